// The attnscope command line as a user meets it: help, exit codes (0 ok, 1 runtime,
// 2 usage), one-line errors that name what was wrong, and outputs checked against
// the fixtures' reference (Hugging Face) values.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "support/fixtures.h"
#include "support/process.h"
#include "support/tiny_model.h"

namespace attnscope {
namespace {

using testing::cli_path;
using testing::fixture_path;
using testing::ProcessResult;
using testing::run_process;

ProcessResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), cli_path());
  return run_process(args);
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

std::string temp_file(const std::string& name, const std::string& bytes) {
  const auto dir = std::filesystem::temp_directory_path() / "attnscope-tests";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(Cli, NoArgumentsIsAUsageError) {
  auto r = cli({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("usage: attnscope <command>"), std::string::npos) << r.err;
}

TEST(Cli, HelpListsEveryCommand) {
  auto r = cli({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* c : {"info", "tokenize", "generate"}) EXPECT_NE(r.out.find(c), std::string::npos) << c;
}

TEST(Cli, EveryCommandHasHelpWithAnExample) {
  for (const char* c : {"info", "tokenize", "generate"}) {
    auto r = cli({c, "--help"});
    EXPECT_EQ(r.exit_code, 0) << c;
    EXPECT_NE(r.out.find("examples:"), std::string::npos) << c << ": " << r.out;
    EXPECT_NE(r.out.find(std::string("attnscope ") + c), std::string::npos) << c;
  }
}

TEST(Cli, UnknownCommandAndMissingArgumentsAreUsageErrors) {
  auto unknown = cli({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos);

  auto missing = cli({"generate", "-p", "hello"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--model"), std::string::npos) << missing.err;
  EXPECT_EQ(count_lines(missing.err), 2) << "one error line and one usage line: " << missing.err;

  auto bad_number = cli({"generate", "-m", "x.gguf", "-p", "hi", "-n", "many"});
  EXPECT_EQ(bad_number.exit_code, 2);
}

TEST(Cli, ABadCpuOverrideIsAUsageErrorAndInfoNamesTheKernels) {
  auto bad = run_process({"/usr/bin/env", "ATTNSCOPE_CPU=avx9", cli_path(), "info", "model.gguf"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("expected scalar, avx2 or avx512, got 'avx9'"), std::string::npos) << bad.err;
  auto model = testing::write_tiny_model(testing::TinyModelSpec{}, "cli_kernels");
  ASSERT_TRUE(model.ok());
  auto scalar = run_process({"/usr/bin/env", "ATTNSCOPE_CPU=scalar", cli_path(), "info", *model});
  ASSERT_EQ(scalar.exit_code, 0) << scalar.err;
  EXPECT_NE(scalar.out.find("kernels         scalar (this CPU supports "), std::string::npos) << scalar.out;
}

TEST(Cli, MissingFileIsARuntimeErrorNamingThePath) {
  auto r = cli({"info", "/no/such/model.gguf"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/no/such/model.gguf"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(Cli, CorruptFilesFailCleanly) {
  ATTN_REQUIRE_FIXTURES();
  const std::string good = read_file(fixture_path("models/qwen2/model-f32.gguf"));
  ASSERT_GT(good.size(), 100000u);
  std::string wrong_magic = good;
  wrong_magic[0] = 'X';
  std::string bad_version = good;
  bad_version[4] = 9;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"truncated-header.gguf", good.substr(0, 3)},
      {"truncated-metadata.gguf", good.substr(0, 5000)},
      {"truncated-data.gguf", good.substr(0, good.size() - 1000)},
      {"wrong-magic.gguf", wrong_magic},
      {"bad-version.gguf", bad_version},
      {"empty.gguf", ""},
  };
  for (const auto& [name, bytes] : cases) {
    const std::string path = temp_file(name, bytes);
    for (const char* cmd : {"info", "generate"}) {
      auto r = std::string(cmd) == "info" ? cli({"info", path}) : cli({"generate", "-m", path, "-p", "hi"});
      EXPECT_EQ(r.signal, 0) << name << " crashed " << cmd;
      EXPECT_EQ(r.exit_code, 1) << name << " " << cmd << ": " << r.err;
      EXPECT_NE(r.err.find(name), std::string::npos) << "names the file: " << r.err;
      EXPECT_EQ(count_lines(r.err), 1) << r.err;
    }
  }
}

TEST(Cli, PromptLongerThanTheContextFails) {
  auto path = testing::write_tiny_model(testing::TinyModelSpec{}, "cli_ctx");  // context 64
  ASSERT_TRUE(path.ok()) << path.error().message;
  auto r = cli({"generate", "-m", *path, "-p", std::string(200, 'a'), "-n", "4"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("context length of 64"), std::string::npos) << r.err;
}

TEST(Cli, InfoReportsTheReferenceConfiguration) {
  ATTN_REQUIRE_FIXTURES();
  std::ifstream in(fixture_path("models/qwen3/reference.json"));
  const auto ref = nlohmann::json::parse(in)["config"];
  auto r = cli({"info", fixture_path("models/qwen3/model-f32.gguf"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "qwen3");
  EXPECT_TRUE(j["runnable"].get<bool>());
  const auto& d = j["dimensions"];
  EXPECT_EQ(d["n_layers"], ref["num_hidden_layers"]);
  EXPECT_EQ(d["n_embd"], ref["hidden_size"]);
  EXPECT_EQ(d["n_heads"], ref["num_attention_heads"]);
  EXPECT_EQ(d["n_kv_heads"], ref["num_key_value_heads"]);
  EXPECT_EQ(d["head_dim"], ref["head_dim"]);
  EXPECT_EQ(d["n_ff"], ref["intermediate_size"]);
  EXPECT_EQ(d["n_vocab"], ref["vocab_size"]);
  EXPECT_EQ(d["context_length"], ref["max_position_embeddings"]);
  EXPECT_EQ(j["tokenizer"]["pre"], "qwen2");

  auto text = cli({"info", fixture_path("models/qwen3/model-f32.gguf")});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("runnable        yes"), std::string::npos) << text.out;
}

TEST(Cli, InfoOnAnUnsupportedArchitectureSaysWhy) {
  ATTN_REQUIRE_FIXTURES();
  auto r = cli({"info", fixture_path("models/gpt2/model-f32.gguf")});
  EXPECT_EQ(r.exit_code, 0) << "info still describes the file";
  EXPECT_NE(r.out.find("runnable        no: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'gpt2' is not supported"), std::string::npos) << r.out;
}

TEST(Cli, TokenizeMatchesTheReferenceIds) {
  ATTN_REQUIRE_FIXTURES();
  std::ifstream in(fixture_path("models/llama/reference.json"));
  const auto ref = nlohmann::json::parse(in);
  auto r = cli({"tokenize", "-m", fixture_path("models/llama/model-f32.gguf"), "-p",
                ref["prompt"].get<std::string>(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto tokens = nlohmann::json::parse(r.out);
  std::vector<int32_t> ids;
  std::vector<std::string> pieces;
  for (const auto& t : tokens) {
    ids.push_back(t["id"].get<int32_t>());
    pieces.push_back(t["piece"].get<std::string>());
  }
  EXPECT_EQ(ids, ref["input_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(pieces, ref["input_pieces"].get<std::vector<std::string>>());
}

TEST(Cli, GenerateStreamsTheReferenceContinuation) {
  ATTN_REQUIRE_FIXTURES();
  for (const char* name : {"llama", "qwen2"}) {
    std::ifstream in(fixture_path(std::string("models/") + name + "/reference.json"));
    const auto ref = nlohmann::json::parse(in);
    auto r = cli({"generate", "-m", fixture_path(std::string("models/") + name + "/model-f32.gguf"), "-p",
                  ref["prompt"].get<std::string>(), "-n", "8", "--ignore-eos", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string text = r.out;
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    text.pop_back();
    // Hugging Face's decode of the generated ids drops the leading space of an SPM piece.
    std::string want = ref["generated_text"].get<std::string>();
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(' '));
      return s;
    };
    EXPECT_EQ(trim(text), trim(want)) << name;
    EXPECT_NE(r.err.find("generated: 8 tokens"), std::string::npos) << r.err;

    auto quiet = cli({"generate", "-m", fixture_path(std::string("models/") + name + "/model-f32.gguf"),
                      "-p", ref["prompt"].get<std::string>(), "-n", "8", "--ignore-eos", "-q"});
    EXPECT_EQ(quiet.err, "") << "--quiet keeps stderr clean";
    EXPECT_EQ(quiet.out, r.out) << "greedy generation is deterministic";
  }
}

}  // namespace
}  // namespace attnscope
