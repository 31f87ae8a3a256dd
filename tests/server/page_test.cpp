// Page assembly (JSON that cannot break out of a <script>, insertion points, nonces,
// base64), the embedded web/ table, and the run registry's ids.
#include <gtest/gtest.h>

#include <fstream>

#include "server/page.h"
#include "server/run_registry.h"
#include "server/server_test_util.h"
#include "server/web_assets.h"

namespace attnscope::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(ScriptJson, EscapesEverythingThatCouldEndTheScript) {
  const std::string evil = "</script><script>alert(1)</script><!-- & \xe2\x80\xa8 \xe2\x80\xa9 caf\xc3\xa9";
  const std::string out = script_json(json{{"prompt", evil}, {"k<ey>", 1}});
  for (const char* bad : {"<", ">", "&", "\xe2\x80\xa8", "\xe2\x80\xa9"}) {
    EXPECT_EQ(out.find(bad), std::string::npos) << bad << " in " << out;
  }
  for (unsigned char c : out) EXPECT_LT(c, 0x80) << out;  // ASCII only
  EXPECT_NE(out.find("\\u003c/script\\u003e"), std::string::npos) << out;
  EXPECT_NE(out.find("\\u2028"), std::string::npos) << out;
  // ...and it is still the same JSON.
  const json back = json::parse(out);
  EXPECT_EQ(back["prompt"], evil);
  EXPECT_EQ(back["k<ey>"], 1);
}

TEST(ScriptJson, InvalidUtf8BecomesReplacementCharacters) {
  const std::string out = script_json(json("a\xff" "b"));
  EXPECT_EQ(json::parse(out), "a\xef\xbf\xbd" "b");
}

TEST(AssemblePage, UsesTheMarkerThenMetaCharsetThenHead) {
  EXPECT_EQ(assemble_page("<html><head><meta charset=\"utf-8\"><!-- attnscope:head --><title>t</title></head>"
                          "<body>x</body></html>",
                          "[H]", "[B]"),
            "<html><head><meta charset=\"utf-8\">[H]<title>t</title></head><body>x[B]</body></html>");
  EXPECT_EQ(assemble_page("<HEAD><META CHARSET=utf-8><title>t</title></HEAD><BODY></BODY>", "[H]", "[B]"),
            "<HEAD><META CHARSET=utf-8>[H]<title>t</title></HEAD><BODY>[B]</BODY>");
  EXPECT_EQ(assemble_page("<header></header><head lang=en><title>t</title></head><body></body>", "[H]", ""),
            "<header></header><head lang=en>[H]<title>t</title></head><body></body>");
  EXPECT_EQ(assemble_page("plain", "[H]", "[B]"), "[H]plain[B]");
  // web/index.html's placeholders: the marker wins; every one of them is removed.
  EXPECT_EQ(assemble_page("<head><!--ATTNSCOPE_IMPORTMAP--><!-- attnscope:head --><!--ATTNSCOPE_CONFIG--></head>"
                          "<body></body>",
                          "[H]", "[B]"),
            "<head>[H]</head><body>[B]</body>");
  EXPECT_EQ(assemble_page("<head><x><!--ATTNSCOPE_IMPORTMAP--><y><!--ATTNSCOPE_CONFIG--></head>", "[H]", ""),
            "<head><x>[H]<y></head>");
}

TEST(AddScriptNonce, TagsEveryScriptElementOnly) {
  EXPECT_EQ(add_script_nonce("<script>a</script><SCRIPT type=module>b</SCRIPT><scripts>", "N"),
            "<script nonce=\"N\">a</script><SCRIPT nonce=\"N\" type=module>b</SCRIPT><scripts>");
}

TEST(Base64, MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(std::string_view("")), "");
  EXPECT_EQ(base64_encode(std::string_view("f")), "Zg==");
  EXPECT_EQ(base64_encode(std::string_view("fo")), "Zm8=");
  EXPECT_EQ(base64_encode(std::string_view("foo")), "Zm9v");
  EXPECT_EQ(base64_encode(std::string_view("foob")), "Zm9vYg==");
  EXPECT_EQ(base64_encode(std::string_view("fooba")), "Zm9vYmE=");
  EXPECT_EQ(base64_encode(std::string_view("foobar")), "Zm9vYmFy");
  const uint8_t bytes[] = {0xfb, 0xff, 0x00};
  EXPECT_EQ(base64_encode(std::span<const uint8_t>(bytes, 3)), "+/8A");
}

TEST(WebAssets, EmbedsWebExceptTheReadme) {
  const fs::path web = fs::path(__FILE__).parent_path().parent_path().parent_path() / "web";  // tests/server/..
  size_t on_disk = 0;
  for (const auto& e : fs::recursive_directory_iterator(web)) {
    if (!e.is_regular_file() || e.path().filename() == "README.md") continue;
    if (e.path().filename().string().front() == '.') continue;
    ++on_disk;
    const std::string rel = fs::relative(e.path(), web).generic_string();
    const EmbeddedFile* f = find_web_file(rel);
    ASSERT_NE(f, nullptr) << rel;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(as_text(*f), content) << rel;
  }
  EXPECT_EQ(web_files().size(), on_disk);
  EXPECT_NE(find_web_file("index.html"), nullptr);
  EXPECT_EQ(find_web_file("README.md"), nullptr);
  for (const char* bad : {"", "/index.html", "./index.html", "../web/index.html", "index.html/", "INDEX.HTML"}) {
    EXPECT_EQ(find_web_file(bad), nullptr) << bad;
  }
  EXPECT_TRUE(std::is_sorted(web_files().begin(), web_files().end(),
                             [](const EmbeddedFile& a, const EmbeddedFile& b) { return a.path < b.path; }));
}

TEST(WebAssets, ContentTypes) {
  EXPECT_STREQ(content_type_for("views/grid.js"), "text/javascript; charset=utf-8");
  EXPECT_STREQ(content_type_for("style.css"), "text/css; charset=utf-8");
  EXPECT_STREQ(content_type_for("icon.svg"), "image/svg+xml");
  EXPECT_STREQ(content_type_for("x.json"), "application/json");
  EXPECT_STREQ(content_type_for("index.html"), "text/html; charset=utf-8");
  EXPECT_STREQ(content_type_for("js"), "application/octet-stream");
}

TEST(RunRegistry, UrlSafeIds) {
  EXPECT_EQ(url_safe_id("cat"), "cat");
  EXPECT_EQ(url_safe_id("a b/c?d%e"), "a_b_c_d_e");
  EXPECT_EQ(url_safe_id(".hidden"), "run.hidden");
  EXPECT_EQ(url_safe_id("-x"), "run-x");
  EXPECT_EQ(url_safe_id(""), "run");
  EXPECT_EQ(url_safe_id("caf\xc3\xa9"), "caf__");
  EXPECT_EQ(url_safe_id(std::string(300, 'a')).size(), 100u);
}

TEST(RunRegistry, ListsRunsAndDirectoriesOfRunsWithUniqueStableIds) {
  const fs::path root = testing::fresh_dir("registry");
  testing::capture_run(root / "a" / "cat", "the cat", 1);
  testing::capture_run(root / "b" / "cat", "a cat", 1);
  testing::capture_run(root / "b" / "dog run", "the dog", 1);
  fs::create_directories(root / "b" / "not-a-run");
  testing::capture_run(root / "single", "one run", 1);

  auto reg = RunRegistry::create({(root / "a").string(), (root / "b").string(), (root / "single").string()});
  ASSERT_TRUE(reg.ok()) << reg.error().message;
  RunRegistry& r = **reg;
  EXPECT_EQ(r.ids(), (std::vector<std::string>{"cat", "cat-2", "dog_run", "single"}));
  EXPECT_EQ(r.dir_of("cat-2"), fs::canonical(root / "b" / "cat"));
  EXPECT_FALSE(r.dir_of("not-a-run"));
  EXPECT_FALSE(r.dir_of("../a/cat"));
  EXPECT_EQ(r.first_runs_dir(), fs::canonical(root / "a"));

  const auto summaries = r.summaries();
  ASSERT_EQ(summaries.size(), 4u);
  EXPECT_EQ(summaries[2].name, "dog run");
  EXPECT_EQ(summaries[2].prompt, "the dog");
  EXPECT_TRUE(summaries[2].complete);
  EXPECT_GT(summaries[2].n_tokens, 2);

  // A new run appears on rescan; a run that was there keeps its id.
  testing::capture_run(root / "a" / "ant", "an ant", 1);
  r.rescan();
  EXPECT_EQ(r.ids(), (std::vector<std::string>{"ant", "cat", "cat-2", "dog_run", "single"}));
  EXPECT_EQ(r.id_of(root / "b" / "cat"), "cat-2");

  auto open = r.open("cat");
  ASSERT_TRUE(open.ok()) << open.error().message;
  auto again = r.open("cat");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(open->reader.get(), again->reader.get());  // unchanged run: the same reader
  EXPECT_FALSE(r.open("nope").ok());
}

TEST(RunRegistry, RefusesPathsThatAreNotDirectories) {
  const fs::path root = testing::fresh_dir("registry-bad");
  std::ofstream(root / "file.txt") << "x";
  EXPECT_FALSE(RunRegistry::create({(root / "missing").string()}).ok());
  auto r = RunRegistry::create({(root / "file.txt").string()});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("file.txt"), std::string::npos);
}

}  // namespace
}  // namespace attnscope::server
