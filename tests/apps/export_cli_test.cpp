// `attnscope export` as a user meets it: the file loads in Python with numpy through an
// independent reader written from the safetensors spec (the `safetensors` package is
// not in Debian 12), its values match attnscope's own reader, and bad input gives exit
// code 2 (usage) or 1 (runtime) with a one-line error naming what was wrong.
#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "attnscope/safetensors.h"
#include "attnscope/store.h"
#include "support/fixtures.h"
#include "support/process.h"

namespace attnscope {
namespace {

namespace fs = std::filesystem;
using store::Range;
using testing::cli_path;
using testing::ProcessResult;
using testing::run_process;

constexpr int32_t kLayers = 3, kHeads = 4, kTokens = 9, kPrompt = 5;

ProcessResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), cli_path());
  return run_process(args);
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "attnscope-tests" / "export-cli" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A stored run of random causal attention; `complete` false drops the writer after the
// prompt (an interrupted capture with one generated token recorded).
void store_run(const fs::path& dir, bool complete = true) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(0.01f, 1.0f);
  std::vector<std::vector<float>> probs;  // [layer * kHeads + head]: (kTokens, kTokens)
  for (int32_t i = 0; i < kLayers * kHeads; ++i) {
    std::vector<float> m(kTokens * kTokens, 0.0f);
    for (int32_t q = 0; q < kTokens; ++q) {
      float sum = 0;
      for (int32_t k = 0; k <= q; ++k) sum += m[q * kTokens + k] = u(rng);
      for (int32_t k = 0; k <= q; ++k) m[q * kTokens + k] /= sum;
    }
    probs.push_back(std::move(m));
  }
  store::RunManifest m;
  m.model.name = "cli-model";
  m.model.file_name = "cli.gguf";
  m.prompt = "héllo";
  m.n_prompt = kPrompt;
  m.precision = store::Precision::kF32;
  m.n_layers = m.model.n_layers = kLayers;
  m.n_heads = m.model.n_heads = kHeads;
  for (int32_t i = 0; i < kPrompt; ++i) m.tokens.push_back(store::TokenRecord{10 + i, fmt::format("t{}", i)});
  auto writer = store::RunWriter::create(dir.string(), m, true);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  auto deliver = [&](int32_t q_begin, int32_t n_rows) {
    const int32_t n_keys = q_begin + n_rows;
    for (int32_t l = 0; l < kLayers; ++l) {
      std::vector<float> block;
      for (int32_t h = 0; h < kHeads; ++h) {
        for (int32_t r = 0; r < n_rows; ++r) {
          for (int32_t k = 0; k < n_keys; ++k) block.push_back(probs[l * kHeads + h][(q_begin + r) * kTokens + k]);
        }
      }
      (*writer)->on_attention(AttentionRows{l, kHeads, q_begin, n_rows, n_keys, block.data()});
    }
  };
  deliver(0, kPrompt);
  for (int32_t pos = kPrompt; pos < kTokens; ++pos) {
    store::TokenRecord t{20 + pos, fmt::format("g{}", pos)};
    t.generated = true;
    ASSERT_TRUE((*writer)->add_generated_token(t).ok());
    m.tokens.push_back(t);
    if (!complete) return;
    deliver(pos, 1);
  }
  m.complete = true;
  ASSERT_TRUE((*writer)->finish(m).ok());
}

// ---- The independent Python reader ----

// Reads a safetensors file per the spec (u64 LE header size, JSON header with dtype,
// shape, data_offsets, then the data) with numpy.frombuffer only, checks that the
// offsets tile the data section, and prints {"metadata", "tensors": {name: {dtype,
// shape, values}}} as JSON, values as exact Python floats / ints.
constexpr const char* kPythonReader = R"PY(
import json, struct, sys
import numpy as np

path = sys.argv[1]
with open(path, "rb") as f:
    data = f.read()
(n,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + n].decode("utf-8"))
assert data[8:9] == b"{", "header starts with {"
body = memoryview(data)[8 + n:]
meta = header.pop("__metadata__", {})
assert all(isinstance(v, str) for v in meta.values())
dtypes = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "I64": "<i8", "U8": "u1"}
spans = sorted(tuple(e["data_offsets"]) for e in header.values())
pos = 0
for b, e in spans:
    assert b == pos, f"offsets leave a gap or overlap at {b}"
    pos = e
assert pos == len(body), f"data section is {len(body)} bytes, offsets cover {pos}"
out = {}
for name, e in header.items():
    b, end = e["data_offsets"]
    a = np.frombuffer(body[b:end], dtype=dtypes[e["dtype"]]).reshape(e["shape"])
    if name.startswith("attn.") and a.ndim >= 2:
        assert not np.triu(a, k=1).any(), f"{name}: nonzero above the diagonal"
    out[name] = {"dtype": e["dtype"], "shape": list(a.shape), "values": a.reshape(-1).tolist()}
# The documented indexing: t["attn.0"][head, query, key].
if "attn.0" in out:
    a = np.frombuffer(body[slice(*header["attn.0"]["data_offsets"])], dtype=dtypes[header["attn.0"]["dtype"]])
    a = a.reshape(header["attn.0"]["shape"])
    out["_attn0_h1_q3_k2"] = float(a[1, 3, 2])
print(json.dumps({"metadata": meta, "tensors": out}))
)PY";

// The first Python with numpy among $ATTNSCOPE_PYTHON, every python3 on the PATH and
// /usr/bin/python3 (a pyenv python3 first on the PATH may lack numpy), or "".
// run_process does not search the PATH, so the candidates are absolute paths.
const std::string& python() {
  static const std::string found = [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("ATTNSCOPE_PYTHON"); env != nullptr && *env != 0) candidates.push_back(env);
    const std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
    for (size_t begin = 0; begin <= path.size();) {
      const size_t end = std::min(path.find(':', begin), path.size());
      const fs::path exe = fs::path(path.substr(begin, end - begin)) / "python3";
      if (end > begin && access(exe.c_str(), X_OK) == 0) candidates.push_back(exe.string());
      begin = end + 1;
    }
    candidates.push_back("/usr/bin/python3");
    for (const std::string& c : candidates) {
      if (run_process({c, "-c", "import numpy"}).exit_code == 0) return c;
    }
    return std::string();
  }();
  return found;
}

#define REQUIRE_PYTHON_NUMPY()                                                              \
  do {                                                                                      \
    if (python().empty()) {                                                                 \
      if (testing::in_ci()) FAIL() << "python3 with numpy is required under CI=true";     \
      GTEST_SKIP() << "python3 with numpy not found: install python3-numpy to run this test"; \
    }                                                                                       \
  } while (0)

nlohmann::json read_with_python(const fs::path& file) {
  const fs::path script = file.parent_path() / "read_safetensors.py";
  std::ofstream(script) << kPythonReader;
  auto r = run_process({python(), script.string(), file.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return nullptr;
  return nlohmann::json::parse(r.out);
}

std::vector<float> floats(const nlohmann::json& values) {
  std::vector<float> out;
  for (const auto& v : values) out.push_back(static_cast<float>(v.get<double>()));
  return out;
}

TEST(ExportCli, PythonReadsTheSameValuesAsAttnscope) {
  REQUIRE_PYTHON_NUMPY();
  const fs::path dir = temp_dir("python");
  store_run(dir / "run");
  if (HasFatalFailure()) return;
  const fs::path out = dir / "run.safetensors";
  auto r = cli({"export", (dir / "run").string(), "-o", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote " + out.string()), std::string::npos) << r.out;

  const nlohmann::json py = read_with_python(out);
  ASSERT_FALSE(py.is_null());
  auto reader = store::RunReader::open((dir / "run").string());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const auto& t = py["tensors"];
  ASSERT_EQ(t.size(), 1u + kLayers + 1u);  // tokens, attn.0..2, the indexing probe
  EXPECT_EQ(t["tokens"]["dtype"], "I32");
  std::vector<int32_t> ids;
  for (const auto& tok : (*reader)->manifest().tokens) ids.push_back(tok.id);
  EXPECT_EQ(t["tokens"]["values"].get<std::vector<int32_t>>(), ids);
  const Range all{0, kTokens};
  for (int32_t l = 0; l < kLayers; ++l) {
    const auto& a = t[fmt::format("attn.{}", l)];
    EXPECT_EQ(a["dtype"], "F32");
    EXPECT_EQ(a["shape"], nlohmann::json::array({kHeads, kTokens, kTokens}));
    const std::vector<float> values = floats(a["values"]);
    for (int32_t h = 0; h < kHeads; ++h) {
      auto want = (*reader)->read(l, h, all, all);
      ASSERT_TRUE(want.ok());
      const std::vector<float> got(values.begin() + h * kTokens * kTokens,
                                   values.begin() + (h + 1) * kTokens * kTokens);
      EXPECT_EQ(got, *want) << "layer " << l << " head " << h;
    }
  }
  auto probe = (*reader)->read(0, 1, {3, 4}, {2, 3});
  EXPECT_EQ(static_cast<float>(py["tensors"]["_attn0_h1_q3_k2"].get<double>()), (*probe)[0]) << "[head, query, key]";
  const auto& meta = py["metadata"];
  EXPECT_EQ(meta["n_prompt"], "5");
  EXPECT_EQ(meta["model"], "cli-model");
  EXPECT_EQ(meta["prompt"], "héllo");
  EXPECT_EQ(nlohmann::json::parse(meta["token_texts"].get<std::string>())[6], "g6");
}

TEST(ExportCli, AggregatesAndF16ReadBackInPythonAsInAttnscope) {
  REQUIRE_PYTHON_NUMPY();
  const fs::path dir = temp_dir("aggregates");
  store_run(dir / "run");
  if (HasFatalFailure()) return;
  const fs::path out = dir / "agg.safetensors";
  auto r = cli({"export", (dir / "run").string(), "-o", out.string(), "--layers", "0,2", "--heads", "1-2",
                "--aggregate", "head-mean,rollout", "--aggregate", "layer-mean", "--dtype", "f16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json py = read_with_python(out);
  ASSERT_FALSE(py.is_null());
  auto f = safetensors::File::open(out.string());
  ASSERT_TRUE(f.ok()) << f.error().message;
  std::vector<std::string> names;
  for (const auto& [name, _] : py["tensors"].items()) names.push_back(name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"attn.0.head_mean", "attn.0.rollout", "attn.2.head_mean",
                                             "attn.2.rollout", "attn.layer_mean", "tokens"}));
  for (const auto& name : names) {
    if (name == "tokens") continue;
    const auto& a = py["tensors"][name];
    EXPECT_EQ(a["dtype"], "F16") << name;
    EXPECT_EQ(a["shape"], nlohmann::json::array({kTokens, kTokens})) << name;
    auto ours = f->read_f32(name);
    ASSERT_TRUE(ours.ok());
    EXPECT_EQ(floats(a["values"]), *ours) << name;
  }
  // Head mean over heads 1 and 2, within f16 rounding.
  auto reader = store::RunReader::open((dir / "run").string());
  ASSERT_TRUE(reader.ok());
  const Range all{0, kTokens};
  auto h1 = (*reader)->read(2, 1, all, all);
  auto h2 = (*reader)->read(2, 2, all, all);
  const auto mean = floats(py["tensors"]["attn.2.head_mean"]["values"]);
  for (size_t i = 0; i < mean.size(); ++i) EXPECT_NEAR(mean[i], ((*h1)[i] + (*h2)[i]) / 2, 1.0 / 2048) << i;
  const auto& meta = py["metadata"];
  EXPECT_EQ(meta["aggregate"], "head-mean,layer-mean,rollout");
  EXPECT_EQ(meta["layers"], "[0,2]");
  EXPECT_EQ(meta["heads"], "[1,2]");
  EXPECT_EQ(meta["dtype"], "F16");
}

TEST(ExportCli, HelpHasExamples) {
  auto r = cli({"export", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("examples:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("attnscope export runs/"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("load_file"), std::string::npos) << r.out;
  auto top = cli({"--help"});
  EXPECT_NE(top.out.find("export"), std::string::npos);
}

TEST(ExportCli, UsageErrorsExitTwoAndNameTheValue) {
  const fs::path dir = temp_dir("usage");
  store_run(dir / "run");
  if (HasFatalFailure()) return;
  const std::string run = (dir / "run").string(), out = (dir / "x.safetensors").string();
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"--layers", "0,9"}, "invalid layer list '0,9': layer 9 is out of range (the run has layers 0-2)"},
      {{"--layers", "1-x"}, "invalid layer list '1-x': '1-x' is not a layer number or a range like 3-5"},
      {{"--heads", "4"}, "invalid head list '4': head 4 is out of range (the run has heads 0-3)"},
      {{"--layers", ""}, "invalid layer list '': it is empty"},
      {{"--aggregate", "mean"}, "invalid aggregate: 'mean' (valid: none, head-mean, head-max, layer-mean, rollout)"},
      {{"--aggregate", "head-mean,bogus"}, "invalid aggregate: 'bogus'"},
      {{"--dtype", "f64"}, "--dtype"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"export", run, "-o", out};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, 2) << c.expect << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(r.err), 2) << "one error line and one usage line: " << r.err;
  }
  auto no_output = cli({"export", run});
  EXPECT_EQ(no_output.exit_code, 2);
  EXPECT_NE(no_output.err.find("--output"), std::string::npos) << no_output.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(ExportCli, MissingRunDirIsARuntimeErrorNamingThePath) {
  const fs::path dir = temp_dir("missing");
  auto r = cli({"export", "/no/such/run", "-o", (dir / "x.safetensors").string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("/no/such/run"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir / "x.safetensors"));

  store_run(dir / "run");
  if (HasFatalFailure()) return;
  auto unwritable = cli({"export", (dir / "run").string(), "-o", "/no/such/dir/x.safetensors"});
  EXPECT_EQ(unwritable.exit_code, 1);
  EXPECT_NE(unwritable.err.find("/no/such/dir/x.safetensors"), std::string::npos) << unwritable.err;
  EXPECT_EQ(count_lines(unwritable.err), 1) << unwritable.err;
}

TEST(ExportCli, IncompleteRunExportsTheStoredPositionsWithANote) {
  const fs::path dir = temp_dir("incomplete");
  store_run(dir / "run", /*complete=*/false);
  if (HasFatalFailure()) return;
  const fs::path out = dir / "partial.safetensors";
  auto r = cli({"export", (dir / "run").string(), "-o", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("incomplete run: exporting the 5 positions"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  auto f = safetensors::File::open(out.string());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->metadata().at("complete"), "false");
  EXPECT_EQ(f->find("attn.0")->shape, (std::vector<uint64_t>{kHeads, kPrompt, kPrompt}));
}

}  // namespace
}  // namespace attnscope
