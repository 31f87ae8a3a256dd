// attnscope render: the page holds every module as a data: URL, the CSS and the config;
// run data goes inline under the budget (no data/ directory) and into per-layer/group
// files over it. Chunk bytes decoded here equal RunReader's values within 1/255.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "attnscope/render.h"
#include "server/server_test_util.h"
#include "server/slice.h"
#include "server/web_assets.h"

namespace attnscope::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using store::Aggregate;
using store::Range;

const std::string kEvil = "</script><script>alert(1)</script>";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::vector<uint8_t> base64_decode(const std::string& s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = value(c);
    if (v < 0) continue;  // '='
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// Every window.attnscopeChunk({...}) call in `text`.
std::vector<json> chunks_in(const std::string& text) {
  std::vector<json> out;
  const std::string call = "window.attnscopeChunk({";
  for (size_t at = 0; (at = text.find(call, at)) != std::string::npos;) {
    const size_t begin = at + call.size() - 1;
    const size_t end = text.find(");\n", begin);
    out.push_back(json::parse(text.substr(begin, end - begin)));
    at = end;
  }
  return out;
}

class RenderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(testing::fresh_dir("render"));
    testing::capture_run(*root_ / "a" / "cat", "the cat sat on the mat", 4, store::Precision::kF16);
    testing::capture_run(*root_ / "b" / "cat", kEvil, 2, store::Precision::kU8);
  }
  static void TearDownTestSuite() { delete root_; }
  static fs::path run(const char* which) { return *root_ / which / "cat"; }

  // Checks every data chunk of a run against its reader.
  static void check_chunks(const std::vector<json>& chunks, const std::string& id, const fs::path& dir) {
    auto reader = store::RunReader::open(dir.string());
    ASSERT_TRUE(reader.ok());
    const store::RunReader& r = **reader;
    const int32_t n = r.n_rows();
    const double tol = 1.0 / 255 + 1e-6;
    auto check_triangle = [&](const std::vector<uint8_t>& bytes, size_t offset, const std::vector<float>& m,
                              const std::string& what) {
      size_t at = offset;
      for (int32_t i = 0; i < n; ++i) {
        for (int32_t k = 0; k <= i; ++k, ++at) {
          ASSERT_LT(at, bytes.size()) << what;
          ASSERT_NEAR(bytes[at] / 255.0, m[static_cast<size_t>(i) * n + k], tol) << what << " row " << i << " key " << k;
        }
      }
    };
    std::map<std::string, int> kinds;
    for (const json& c : chunks) {
      if (c["run"] != id) continue;
      const std::string kind = c["kind"];
      ++kinds[kind];
      if (kind == "manifest") {
        EXPECT_EQ(c["manifest"]["prompt"], r.manifest().prompt);
        EXPECT_EQ(c["manifest"]["n_rows"], n);
        continue;
      }
      EXPECT_EQ(c["encoding"], "u8");
      const auto bytes = base64_decode(c["data"]);
      const size_t tri = static_cast<size_t>(n) * (n + 1) / 2;
      if (kind == "heads") {
        const int32_t l = c["layer"], h0 = c["head0"], h1 = c["head1"];
        EXPECT_EQ(h0 % kRenderGroupHeads, 0);
        EXPECT_EQ(h1, std::min(h0 + kRenderGroupHeads, r.n_heads()));
        ASSERT_EQ(bytes.size(), tri * static_cast<size_t>(h1 - h0));
        for (int32_t h = h0; h < h1; ++h) {
          auto m = r.read(l, h, Range{0, n}, Range{0, n});
          ASSERT_TRUE(m.ok());
          check_triangle(bytes, tri * static_cast<size_t>(h - h0), *m, fmt::format("L{} H{}", l, h));
        }
      } else if (kind == "agg") {
        const int32_t l = c["layer"];
        auto agg = store::parse_aggregate(c["agg"].get<std::string>());
        ASSERT_TRUE(agg.ok());
        EXPECT_EQ(l == -1, *agg == Aggregate::kLayerMean);
        ASSERT_EQ(bytes.size(), tri);
        auto m = r.aggregate(*agg, std::max(l, 0), 0, Range{0, n}, Range{0, n});
        ASSERT_TRUE(m.ok());
        check_triangle(bytes, 0, *m, fmt::format("L{} {}", l, c["agg"].get<std::string>()));
      } else if (kind == "grid") {
        EXPECT_EQ(c["size"], kRenderGridSize);
        auto g = grid(r, kRenderGridSize);
        ASSERT_TRUE(g.ok());
        EXPECT_EQ(bytes, g->data);
      } else {
        ADD_FAILURE() << "unknown chunk kind " << kind;
      }
    }
    const int L = r.n_layers();
    EXPECT_EQ(kinds["manifest"], 1);
    EXPECT_EQ(kinds["heads"], L * ((r.n_heads() + kRenderGroupHeads - 1) / kRenderGroupHeads));
    EXPECT_EQ(kinds["agg"], 3 * L + 1);
    EXPECT_EQ(kinds["grid"], 1);
  }

  static fs::path* root_;
};
fs::path* RenderTest::root_ = nullptr;

json config_of(const std::string& page) {
  const std::string start = "window.ATTNSCOPE_CONFIG = ";
  const size_t at = page.find(start);
  EXPECT_NE(at, std::string::npos);
  const size_t end = page.find(";\n", at);
  return json::parse(page.substr(at + start.size(), end - at - start.size()));
}

TEST_F(RenderTest, SmallRunIsOneSelfContainedFile) {
  const fs::path out = testing::fresh_dir("render-single") / "view";
  auto result = render({run("a").string()}, out.string(), {});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_TRUE(result->inline_data);
  EXPECT_EQ(result->run_ids, std::vector<std::string>{"cat"});
  EXPECT_FALSE(fs::exists(out / "data"));
  const std::string page = slurp(out / "index.html");
  EXPECT_EQ(page.size(), result->page_bytes);

  // The import map: every module as a data: URL holding its bytes.
  const size_t map_at = page.find("<script type=\"importmap\">");
  ASSERT_NE(map_at, std::string::npos);
  const size_t map_begin = page.find('>', map_at) + 1;
  const json map = json::parse(page.substr(map_begin, page.find("</script>", map_begin) - map_begin));
  size_t modules = 0;
  for (const auto& f : web_files()) {
    if (!f.path.ends_with(".js")) continue;
    ++modules;
    const std::string url = map["imports"].value("attnscope/" + std::string(f.path), "");
    const std::string prefix = "data:text/javascript;base64,";
    ASSERT_EQ(url.substr(0, prefix.size()), prefix) << f.path;
    const auto bytes = base64_decode(url.substr(prefix.size()));
    EXPECT_EQ(std::string(bytes.begin(), bytes.end()), as_text(f)) << f.path;
  }
  EXPECT_EQ(map["imports"].size(), modules);
  for (const auto& f : web_files()) {
    if (f.path.ends_with(".css")) {
      EXPECT_NE(page.find(std::string(as_text(f))), std::string::npos) << f.path;
    }
  }
  const json config = config_of(page);
  EXPECT_EQ(config["mode"], "embedded");
  EXPECT_EQ(config["runs"], json::array({"cat"}));
  EXPECT_EQ(config["compare"], false);
  // The chunk queue is defined before any chunk runs.
  EXPECT_LT(page.find("window.attnscopeChunks = "), page.find("window.attnscopeChunk({"));

  const auto chunks = chunks_in(page);
  EXPECT_EQ(static_cast<int64_t>(chunks.size()), result->n_chunks);
  check_chunks(chunks, "cat", run("a"));
}

TEST_F(RenderTest, LargeRunIsChunkedIntoFiles) {
  const fs::path out = testing::fresh_dir("render-chunked") / "view";
  RenderOptions options;
  options.max_inline_bytes = 1000;
  std::vector<RenderProgress> progress;
  options.progress = [&](const RenderProgress& p) { progress.push_back(p); };
  auto result = render({run("a").string()}, out.string(), options);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_FALSE(result->inline_data);
  ASSERT_EQ(progress.size(), 3u);
  EXPECT_EQ(progress.back().done, 3);
  EXPECT_EQ(progress.back().total, 3);

  const std::string page = slurp(out / "index.html");
  EXPECT_TRUE(chunks_in(page).empty());
  size_t modules_bytes = 0;
  for (const auto& f : web_files()) modules_bytes += f.data.size();
  EXPECT_LT(page.size(), modules_bytes * 2 + 8192);  // the page and its modules, no data

  const fs::path data = out / "data" / "cat";
  std::vector<std::string> expected = {"manifest.js", "grid.js", "L-1_layer-mean.js"};
  for (int l = 0; l < 3; ++l) {
    expected.push_back(fmt::format("L{}_H0-8.js", l));
    expected.push_back(fmt::format("L{}_H8-10.js", l));
    for (const char* agg : {"head-mean", "head-max", "rollout"}) expected.push_back(fmt::format("L{}_{}.js", l, agg));
  }
  std::vector<json> chunks;
  for (const auto& name : expected) {
    ASSERT_TRUE(fs::exists(data / name)) << name;
    const auto in_file = chunks_in(slurp(data / name));
    ASSERT_EQ(in_file.size(), 1u) << name;
    chunks.push_back(in_file[0]);
  }
  size_t n_files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(data)) ++n_files;
  EXPECT_EQ(n_files, expected.size());
  check_chunks(chunks, "cat", run("a"));

  // Rendering again under the budget replaces the files with inline data.
  auto again = render({run("a").string()}, out.string(), {});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(fs::exists(out / "data"));
}

TEST_F(RenderTest, CompareHoldsBothRunsAndUntrustedTextStaysInert) {
  const fs::path out = testing::fresh_dir("render-compare") / "view";
  RenderOptions options;
  options.compare = true;
  auto result = render({run("a").string(), run("b").string()}, out.string(), options);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->run_ids, (std::vector<std::string>{"cat", "cat-2"}));
  const std::string page = slurp(out / "index.html");
  const json config = config_of(page);
  EXPECT_EQ(config["runs"], json::array({"cat", "cat-2"}));
  EXPECT_EQ(config["compare"], true);
  // The prompt "</script><script>alert(1)</script>" is in the page only escaped.
  EXPECT_EQ(page.find("alert(1)</script>"), std::string::npos);
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  const auto chunks = chunks_in(page);
  bool found = false;
  for (const auto& c : chunks) {
    if (c["kind"] == "manifest" && c["run"] == "cat-2") found = c["manifest"]["prompt"] == kEvil;
  }
  EXPECT_TRUE(found);
  // every inline chunk script holds exactly one call and no '<'
  for (size_t at = 0; (at = page.find("<script>window.attnscopeChunk(", at)) != std::string::npos; ++at) {
    const size_t end = page.find("</script>", at);
    EXPECT_EQ(page.find('<', at + 1), end);
  }
  check_chunks(chunks, "cat", run("a"));
  check_chunks(chunks, "cat-2", run("b"));
}

TEST_F(RenderTest, RefusesBadArgumentsAndForeignDirectories) {
  const fs::path root = testing::fresh_dir("render-bad");
  EXPECT_FALSE(render({}, (root / "o1").string(), {}).ok());
  RenderOptions compare;
  compare.compare = true;
  EXPECT_FALSE(render({run("a").string()}, (root / "o2").string(), compare).ok());
  EXPECT_FALSE(render({run("a").string(), run("b").string()}, (root / "o3").string(), {}).ok());
  auto missing = render({(root / "nope").string()}, (root / "o4").string(), {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos);
  fs::create_directories(root / "mine");
  std::ofstream(root / "mine" / "notes.txt") << "keep me";
  auto foreign = render({run("a").string()}, (root / "mine").string(), {});
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.error().message.find("not empty"), std::string::npos);
  EXPECT_TRUE(fs::exists(root / "mine" / "notes.txt"));
  EXPECT_FALSE(fs::exists(root / "mine" / "index.html"));
}

}  // namespace
}  // namespace attnscope::server
