// attnscope capture end to end: the stored attention of every fixture model equals
// transformers' reference (prompt rows and generated rows), the manifest's tokens
// equal the reference ids, batch mode resumes, and a capture killed at any moment
// leaves a readable run whose rows are intact.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "attnscope/safetensors.h"
#include "attnscope/store.h"
#include "support/fixtures.h"
#include "support/process.h"
#include "support/tiny_model.h"

namespace attnscope {
namespace {

namespace fs = std::filesystem;
using testing::cli_path;
using testing::fixture_path;
using testing::run_process;

testing::ProcessResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), cli_path());
  return run_process(args);
}

std::string fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "attnscope-tests" / name;
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  return dir.string();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

struct PrecisionCase {
  const char* precision;
  double tol;  // stored value vs reference
};

TEST(Capture, StoresTheReferenceAttentionOfEveryFixtureModel) {
  ATTN_REQUIRE_FIXTURES();
  for (const char* name : {"llama", "mistral", "qwen2", "qwen3"}) {
    const auto ref_json = read_json(fixture_path(fmt::format("models/{}/reference.json", name)));
    auto ref = safetensors::File::open(fixture_path(fmt::format("models/{}/reference.safetensors", name)));
    ASSERT_TRUE(ref.ok()) << ref.error().message;
    auto ids = ref->read_i32("input_ids");
    auto gen = ref->read_i32("generated_ids");
    ASSERT_TRUE(ids.ok() && gen.ok());
    const int32_t T = static_cast<int32_t>(ids->size()), G = static_cast<int32_t>(gen->size()), N = T + G;

    for (const PrecisionCase pc : {PrecisionCase{"f32", 1e-4}, PrecisionCase{"f16", 1e-3}, PrecisionCase{"u8", 1.0 / 255}}) {
      SCOPED_TRACE(fmt::format("{} {}", name, pc.precision));
      const std::string dir = fresh_dir(fmt::format("capture-{}-{}", name, pc.precision));
      auto r = cli({"capture", "-m", fixture_path(fmt::format("models/{}/model-f32.gguf", name)), "-p",
                    ref_json["prompt"].get<std::string>(), "-n", std::to_string(G), "--ignore-eos",
                    "--precision", pc.precision, "-o", dir, "-t", "2"});
      ASSERT_EQ(r.exit_code, 0) << r.err;

      auto run = store::RunReader::open(dir);
      ASSERT_TRUE(run.ok()) << run.error().message;
      const auto& m = (*run)->manifest();
      EXPECT_TRUE((*run)->complete());
      ASSERT_EQ((*run)->n_rows(), N) << "every token of the final sequence has its row";
      ASSERT_EQ(m.n_prompt, T);
      ASSERT_EQ(static_cast<int32_t>(m.tokens.size()), N);
      for (int32_t i = 0; i < N; ++i) {
        const int32_t want = i < T ? (*ids)[static_cast<size_t>(i)] : (*gen)[static_cast<size_t>(i - T)];
        EXPECT_EQ(m.tokens[static_cast<size_t>(i)].id, want) << "token " << i;
        EXPECT_EQ(m.tokens[static_cast<size_t>(i)].generated, i >= T);
      }
      EXPECT_EQ(m.model.n_layers, ref_json["config"]["num_hidden_layers"].get<int32_t>());
      EXPECT_EQ(m.model.content_hash.rfind("xxh64:", 0), 0u);

      for (int32_t l = 0; l < m.n_layers; ++l) {
        auto want = ref->read_f32(fmt::format("generated_attn.{}", l));
        ASSERT_TRUE(want.ok());
        double max_err = 0;
        for (int32_t h = 0; h < m.n_heads; ++h) {
          auto got = (*run)->read(l, h, {0, N}, {0, N});
          ASSERT_TRUE(got.ok()) << got.error().message;
          for (size_t k = 0; k < got->size(); ++k) {
            max_err = std::max(max_err, std::fabs(double((*got)[k]) - (*want)[static_cast<size_t>(h) * N * N + k]));
          }
        }
        EXPECT_LE(max_err, pc.tol) << "layer " << l;
      }

      // The Python path: export, then the safetensors tensors against the reference.
      const std::string file = dir + ".safetensors";
      auto ex = cli({"export", dir, "-o", file});
      ASSERT_EQ(ex.exit_code, 0) << ex.err;
      auto st = safetensors::File::open(file);
      ASSERT_TRUE(st.ok()) << st.error().message;
      auto tokens = st->read_i32("tokens");
      ASSERT_TRUE(tokens.ok());
      ASSERT_EQ(static_cast<int32_t>(tokens->size()), N);
      for (int32_t l = 0; l < m.n_layers; ++l) {
        auto want = ref->read_f32(fmt::format("generated_attn.{}", l));
        auto got = st->read_f32(fmt::format("attn.{}", l));
        ASSERT_TRUE(want.ok() && got.ok());
        ASSERT_EQ(got->size(), want->size());
        double max_err = 0;
        for (size_t k = 0; k < got->size(); ++k) max_err = std::max(max_err, std::fabs(double((*got)[k]) - (*want)[k]));
        EXPECT_LE(max_err, pc.tol) << "exported layer " << l;
      }
    }
  }
}

// A quantized model's prompt attention against transformers run on the dequantized
// weights: with --f32-activations it is the reference arithmetic (1e-4); by default the
// activations are quantized to 8 bits as in llama.cpp, which the fixtures README
// measures at 5.3e-2 from transformers on this file: the default must be of that
// order, and measurably different from f32 (the flag does something).
TEST(Capture, F32ActivationsGiveTheReferenceArithmeticOnAQuantizedModel) {
  ATTN_REQUIRE_FIXTURES();
  auto ref = safetensors::File::open(fixture_path("quant/llama-e2e/reference-Q8_0.safetensors"));
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  auto ids = ref->read_i32("input_ids");
  ASSERT_TRUE(ids.ok());
  const int32_t T = static_cast<int32_t>(ids->size());
  std::string id_list;
  for (int32_t id : *ids) id_list += (id_list.empty() ? "" : ",") + std::to_string(id);
  double err[2] = {0, 0};
  for (int f32 = 0; f32 < 2; ++f32) {
    const std::string dir = fresh_dir(fmt::format("capture-e2e-q8-{}", f32));
    std::vector<std::string> args = {"capture", "-m", fixture_path("quant/llama-e2e/model-Q8_0.gguf"),
                                     "--token-ids", id_list, "--no-bos", "-n", "0", "--precision", "f32",
                                     "-o", dir, "-q"};
    if (f32) args.push_back("--f32-activations");
    auto r = cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto run = store::RunReader::open(dir);
    ASSERT_TRUE(run.ok()) << run.error().message;
    const auto& m = (*run)->manifest();
    ASSERT_GE((*run)->n_rows(), T);
    EXPECT_EQ(m.compute.activations, f32 ? "f32" : "int8");
    EXPECT_FALSE(m.compute.kernels.empty());
    EXPECT_GE(m.compute.n_threads, 1);
    for (int32_t l = 0; l < m.n_layers; ++l) {
      auto want = ref->read_f32(fmt::format("attn.{}", l));  // (n_heads, T, T)
      ASSERT_TRUE(want.ok());
      for (int32_t h = 0; h < m.n_heads; ++h) {
        auto got = (*run)->read(l, h, {0, T}, {0, T});
        ASSERT_TRUE(got.ok()) << got.error().message;
        for (size_t k = 0; k < got->size(); ++k) {
          err[f32] = std::max(err[f32], std::fabs(double((*got)[k]) - (*want)[static_cast<size_t>(h) * T * T + k]));
        }
      }
    }
  }
  std::cout << "prompt attention vs transformers: int8 activations " << err[0] << ", f32 activations " << err[1]
            << "\n";
  EXPECT_LE(err[1], 1e-4);
  EXPECT_GT(err[0], 1e-3);
  EXPECT_LE(err[0], 2 * 5.3e-2);
}

TEST(Capture, TokenByteSpansPointIntoTheText) {
  ATTN_REQUIRE_FIXTURES();
  const std::string dir = fresh_dir("capture-spans");
  const std::string prompt = "Héllo wörld, 123 times\nagain.";
  auto r = cli({"capture", "-m", fixture_path("models/qwen2/model-f32.gguf"), "-p", prompt, "-n", "4",
                "--ignore-eos", "-o", dir, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "") << "--quiet";
  auto run = store::RunReader::open(dir);
  ASSERT_TRUE(run.ok()) << run.error().message;
  const auto& m = (*run)->manifest();
  EXPECT_EQ(m.prompt, prompt);
  EXPECT_EQ(m.text.substr(0, prompt.size()), prompt);
  int64_t covered = 0;
  for (const auto& t : m.tokens) {
    ASSERT_GE(t.byte_begin, 0) << "byte-level BPE tokens all come from the text";
    EXPECT_EQ(t.byte_begin, covered) << "spans are contiguous";
    EXPECT_EQ(m.text.substr(static_cast<size_t>(t.byte_begin), static_cast<size_t>(t.byte_end - t.byte_begin)), t.text);
    covered = t.byte_end;
  }
  EXPECT_EQ(covered, static_cast<int64_t>(m.text.size()));
}

TEST(Capture, RefusesAnExistingRunUnlessOverwrite) {
  auto model = testing::write_tiny_model(testing::TinyModelSpec{}, "capture_overwrite");
  ASSERT_TRUE(model.ok());
  const std::string dir = fresh_dir("capture-overwrite");
  auto first = cli({"capture", "-m", *model, "-p", "abc", "-n", "2", "-o", dir});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto again = cli({"capture", "-m", *model, "-p", "abc", "-n", "2", "-o", dir});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find(dir), std::string::npos) << again.err;
  auto forced = cli({"capture", "-m", *model, "-p", "abcd", "-n", "2", "-o", dir, "--overwrite"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
}

TEST(Capture, UsageErrors) {
  auto none = cli({"capture", "-m", "x.gguf", "-o", "/tmp/x"});
  EXPECT_EQ(none.exit_code, 2);
  auto two = cli({"capture", "-m", "x.gguf", "-p", "a", "--token-ids", "1,2", "-o", "/tmp/x"});
  EXPECT_EQ(two.exit_code, 2);
  auto bad_ids = cli({"capture", "-m", "x.gguf", "--token-ids", "1,x", "-o", "/tmp/x"});
  EXPECT_EQ(bad_ids.exit_code, 2);
  EXPECT_NE(bad_ids.err.find("'x'"), std::string::npos) << bad_ids.err;
  auto bad_precision = cli({"capture", "-m", "x.gguf", "-p", "a", "--precision", "f8", "-o", "/tmp/x"});
  EXPECT_EQ(bad_precision.exit_code, 2);
}

TEST(CaptureBatch, RunsEachLineAndResumesWithoutRedoingFinishedRuns) {
  auto model = testing::write_tiny_model(testing::TinyModelSpec{}, "capture_batch");
  ASSERT_TRUE(model.ok());
  const std::string dir = fresh_dir("capture-batch");
  const std::string jsonl = dir + ".jsonl";
  std::ofstream(jsonl) << R"({"id": "one", "prompt": "abc"})" << "\n\n"
                       << R"({"id": "two", "prompt": "hello there", "max_new_tokens": 3})" << "\n"
                       << R"({"prompt": "no id given"})" << "\n";
  auto r = cli({"capture", "-m", *model, "--prompts", jsonl, "-o", dir, "-n", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* id : {"one", "two", "line-0004"}) {
    auto run = store::RunReader::open(dir + "/" + id);
    ASSERT_TRUE(run.ok()) << id << ": " << run.error().message;
    EXPECT_TRUE((*run)->complete());
    EXPECT_EQ((*run)->manifest().id, id);
  }
  auto two = store::RunReader::open(dir + "/two");
  ASSERT_TRUE(two.ok());
  EXPECT_LE(static_cast<int>((*two)->manifest().tokens.size()) - (*two)->manifest().n_prompt, 3);

  // Damage one run (as an interrupted capture would leave it) and run the batch again.
  const auto before = fs::last_write_time(dir + "/one/manifest.json");
  auto m = read_json(dir + "/two/manifest.json");
  m["complete"] = false;
  std::ofstream(dir + "/two/manifest.json") << m.dump();
  fs::remove(dir + "/two/index.bin");
  auto again = cli({"capture", "-m", *model, "--prompts", jsonl, "-o", dir, "-n", "5"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("1 runs captured, 2 skipped"), std::string::npos) << again.err;
  EXPECT_EQ(fs::last_write_time(dir + "/one/manifest.json"), before) << "finished runs are not redone";
  auto redone = store::RunReader::open(dir + "/two");
  ASSERT_TRUE(redone.ok());
  EXPECT_TRUE((*redone)->complete());
}

TEST(CaptureBatch, AnInvalidLineIsNamedAndNothingRuns) {
  auto model = testing::write_tiny_model(testing::TinyModelSpec{}, "capture_batch_bad");
  ASSERT_TRUE(model.ok());
  const std::string dir = fresh_dir("capture-batch-bad");
  const std::string jsonl = dir + ".jsonl";
  for (const std::string& bad : {std::string("{\"id\": \"ok\", \"prompt\": \"a\"}\n{not json\n"),
                                 std::string("{\"id\": \"../evil\", \"prompt\": \"a\"}\n"),
                                 std::string("{\"id\": \"a\", \"prompt\": 5}\n"),
                                 std::string("{\"id\": \"a\", \"prompt\": \"x\"}\n{\"id\": \"a\", \"prompt\": \"y\"}\n")}) {
    std::ofstream(jsonl) << bad;
    auto r = cli({"capture", "-m", *model, "--prompts", jsonl, "-o", dir});
    EXPECT_EQ(r.exit_code, 1) << bad;
    EXPECT_NE(r.err.find(jsonl + ":"), std::string::npos) << "names file and line: " << r.err;
    EXPECT_FALSE(fs::exists(dir)) << "no run starts before the file is valid";
  }
}

TEST(CaptureCrash, AKilledCaptureLeavesAReadableRunWithIntactRows) {
  // A model big enough that a capture takes a noticeable time.
  testing::TinyModelSpec spec;
  spec.n_layers = 4;
  spec.n_embd = 128;
  spec.n_heads = 4;
  spec.n_kv_heads = 2;
  spec.n_ff = 256;
  spec.n_ctx = 512;
  auto model = testing::write_tiny_model(spec, "capture_crash");
  ASSERT_TRUE(model.ok());
  const std::string prompt(150, 'q');
  const std::vector<std::string> common = {"-m", *model, "-p", prompt, "-n", "200", "--ignore-eos",
                                           "--precision", "f32", "-t", "1", "-q"};

  // The uninterrupted run: the reference for every row.
  const std::string ref_dir = fresh_dir("capture-crash-ref");
  std::vector<std::string> args = {cli_path(), "capture", "-o", ref_dir};
  args.insert(args.end(), common.begin(), common.end());
  const auto t0 = std::chrono::steady_clock::now();
  auto full = run_process(args);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(full.exit_code, 0) << full.err;
  auto ref = store::RunReader::open(ref_dir);
  ASSERT_TRUE(ref.ok()) << ref.error().message;

  std::mt19937 rng(7);
  std::uniform_real_distribution<double> when(0.02 * seconds, 0.95 * seconds);
  int interrupted = 0;
  for (int trial = 0; trial < 8; ++trial) {
    const std::string dir = fresh_dir(fmt::format("capture-crash-{}", trial));
    std::vector<std::string> a = {cli_path(), "capture", "-o", dir};
    a.insert(a.end(), common.begin(), common.end());
    const pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(when(rng)));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!fs::exists(dir + "/manifest.json")) continue;  // killed before the run began
    auto run = store::RunReader::open(dir);
    ASSERT_TRUE(run.ok()) << "trial " << trial << ": " << run.error().message;
    if (!(*run)->complete()) ++interrupted;
    const int32_t n = (*run)->n_rows();
    ASSERT_LE(n, (*ref)->n_rows());
    ASSERT_GE(static_cast<int32_t>((*run)->manifest().tokens.size()), n) << "every stored row has its token";
    for (int32_t i = 0; i < n; ++i) {
      EXPECT_EQ((*run)->manifest().tokens[static_cast<size_t>(i)].id, (*ref)->manifest().tokens[static_cast<size_t>(i)].id);
    }
    for (int32_t l = 0; l < (*run)->n_layers(); ++l) {
      for (int32_t h = 0; h < (*run)->n_heads(); h += 3) {
        auto got = (*run)->read(l, h, {0, n}, {0, n});
        auto want = (*ref)->read(l, h, {0, n}, {0, n});
        ASSERT_TRUE(got.ok() && want.ok());
        EXPECT_EQ(*got, *want) << "trial " << trial << " layer " << l << " head " << h;
      }
    }
  }
  EXPECT_GE(interrupted, 4) << "most kills should land mid-capture";
}

}  // namespace
}  // namespace attnscope
