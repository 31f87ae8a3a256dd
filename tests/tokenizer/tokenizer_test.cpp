// The Tokenizer against the reference vectors (../shared/fixtures/tokenizer, README
// "Tokenizers"): llama.cpp's ggml-vocab .inp/.out files, and the JSON vectors with
// llama.cpp and Hugging Face ids for SentencePiece and byte-level BPE models.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/tokenizer.h"
#include "support/fixtures.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace attnscope {
namespace {

using testing::escaped;
using testing::fixture_path;
using testing::fixture_tokenizer;
using testing::format_ids;
using testing::read_text_file;

// Test names: '-' is not allowed in them.
std::string param_name(const ::testing::TestParamInfo<std::string>& p) {
  std::string name = p.param;
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

// ---- ggml-vocab .inp / .out ------------------------------------------------------

std::vector<std::string> split_inputs(const std::string& inp) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) break;  // the file ends with a separator
    out.push_back(inp.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  return out;
}

std::vector<std::vector<int32_t>> parse_outputs(const std::string& text) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream ids(line);
    std::vector<int32_t> row;
    int32_t id = 0;
    while (ids >> id) row.push_back(id);
    out.push_back(row);
  }
  return out;
}

class GgmlVocabTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GgmlVocabTest, MatchesLlamaCppVectors) {
  ATTN_REQUIRE_FIXTURES();
  const std::string base = "tokenizer/ggml-vocab/ggml-vocab-" + GetParam() + ".gguf";
  const Tokenizer* tok = fixture_tokenizer(base);
  ASSERT_NE(tok, nullptr);
  const auto inputs = split_inputs(read_text_file(fixture_path(base + ".inp")));
  const auto expected = parse_outputs(read_text_file(fixture_path(base + ".out")));
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_EQ(inputs.size(), expected.size());
  size_t passed = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto ids = tok->encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    if (ids == expected[i]) {
      ++passed;
    } else {
      ADD_FAILURE() << base << " #" << i << " '" << escaped(inputs[i]) << "'\n  got      "
                    << format_ids(ids) << "\n  expected " << format_ids(expected[i]);
    }
  }
  std::cout << "[ vectors  ] " << base << ": " << passed << "/" << inputs.size() << " pass\n";
}

INSTANTIATE_TEST_SUITE_P(Vocabs, GgmlVocabTest,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "deepseek-llm",
                                           "deepseek-coder", "falcon", "mpt", "starcoder",
                                           "refact"),
                         param_name);

// ---- JSON vectors ------------------------------------------------------------------

std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

class JsonVectorsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(JsonVectorsTest, MatchesLlamaCppAndHuggingFace) {
  ATTN_REQUIRE_FIXTURES();
  const std::string file = "tokenizer/vectors/" + GetParam() + ".json";
  const auto doc = nlohmann::json::parse(read_text_file(fixture_path(file)));
  const Tokenizer* tok = fixture_tokenizer(doc["files"]["gguf"].get<std::string>());
  ASSERT_NE(tok, nullptr);
  size_t passed = 0;
  size_t n = 0;
  for (const auto& c : doc["cases"]) {
    ++n;
    const std::string text = c["text"].get<std::string>();
    const auto where = [&] { return file + " '" + escaped(text) + "'"; };
    const auto ids00 = tok->encode(text, false, false);
    const auto ids10 = tok->encode(text, true, false);
    const auto ids11 = tok->encode(text, true, true);
    const auto ids01 = tok->encode(text, false, true);
    bool ok = true;
    auto check = [&](const std::vector<int32_t>& got, const nlohmann::json& want, const char* what) {
      if (got == ids_of(want)) return;
      ok = false;
      ADD_FAILURE() << where() << " " << what << "\n  got      " << format_ids(got)
                    << "\n  expected " << format_ids(ids_of(want));
    };
    check(ids00, c["llama_cpp_ids_add_special_0_parse_special_0"], "llama.cpp add_special=0 parse_special=0");
    check(ids10, c["llama_cpp_ids_add_special_1_parse_special_0"], "llama.cpp add_special=1 parse_special=0");
    check(ids11, c["llama_cpp_ids_add_special_1_parse_special_1"], "llama.cpp add_special=1 parse_special=1");
    if (c["llama_cpp_agrees_with_hf"].get<bool>()) {
      // Hugging Face always turns special-token text into the token: parse_special=true.
      check(ids11, c["hf_ids_add_special_tokens_true"], "HF add_special_tokens=True");
      check(ids01, c["hf_ids_add_special_tokens_false"], "HF add_special_tokens=False");
    }
    // hf_decode is HF's decode(hf_ids_add_special_tokens_false, skip_special_tokens=False).
    const std::string decoded = tok->decode(ids01, /*render_special=*/true);
    if (decoded != c["hf_decode"].get<std::string>()) {
      ok = false;
      ADD_FAILURE() << where() << " decode\n  got      '" << escaped(decoded) << "'\n  expected '"
                    << escaped(c["hf_decode"].get<std::string>()) << "'";
    }
    // Without parsing special text, BOS and control tokens dropped: the text comes back.
    const std::string round = tok->decode(ids10, /*render_special=*/false);
    if (round != text) {
      ok = false;
      ADD_FAILURE() << where() << " decode(encode(text))\n  got '" << escaped(round) << "'";
    }
    passed += ok ? 1 : 0;
  }
  EXPECT_EQ(n, doc["n_cases"].get<size_t>());
  std::cout << "[ vectors  ] " << file << ": " << passed << "/" << n << " pass\n";
}

INSTANTIATE_TEST_SUITE_P(Models, JsonVectorsTest,
                         ::testing::Values("full-gpt2", "full-llama2", "gemma2", "gemma3", "gpt2",
                                           "gpt_neox", "llama", "mistral", "phi", "phi3", "qwen2",
                                           "qwen3"),
                         param_name);

// ---- Properties of the loaded vocabularies -------------------------------------------

TEST(TokenizerMetadata, LlamaSpmDefaults) {
  ATTN_REQUIRE_FIXTURES();
  const Tokenizer* tok = fixture_tokenizer("tokenizer/ggml-vocab/ggml-vocab-llama-spm.gguf");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->model(), "llama");
  EXPECT_EQ(tok->n_vocab(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->eot_id(), -1);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_FALSE(tok->add_eos());
  EXPECT_TRUE(tok->is_end_of_generation(2));
  EXPECT_FALSE(tok->is_end_of_generation(1));
  EXPECT_EQ(tok->token_type(1), TokenType::kControl);
  EXPECT_EQ(tok->token_type(3), TokenType::kByte);
  EXPECT_EQ(tok->token_text(1), "<s>");
  EXPECT_EQ(tok->token_text(-1), "");
  EXPECT_EQ(tok->token_text(32000), "");
  // Pieces: "▁" is a space, byte tokens are their byte, control tokens render on request.
  EXPECT_EQ(tok->token_to_piece(15043), " Hello");
  EXPECT_EQ(tok->token_to_piece(3 + 0x0A), "\n");
  EXPECT_EQ(tok->token_to_piece(1), "");
  EXPECT_EQ(tok->token_to_piece(1, true), "<s>");
  EXPECT_EQ(tok->token_to_piece(0), "");  // <unk>
  EXPECT_EQ(tok->token_to_piece(0, true), "<unk>");
  EXPECT_EQ(tok->token_to_piece(99999), "");
  // HF's decode: the leading space from the space prefix is dropped, and only that.
  EXPECT_EQ(tok->decode(tok->encode("Hello world", true, false)), "Hello world");
  EXPECT_EQ(tok->decode(tok->encode("Hello world", true, false), true), "<s> Hello world");
  EXPECT_EQ(tok->decode(tok->encode("  two", false, false)), "  two");
}

TEST(TokenizerMetadata, Phi3SpecialTokensStripWhitespaceOnTheRight) {
  ATTN_REQUIRE_FIXTURES();
  // general.name "Phi3": llama.cpp gives its special tokens (but <s>, <unk> and
  // <|endoftext|>) the rstrip attribute.
  const Tokenizer* tok = fixture_tokenizer("tokenizer/ggml-vocab/ggml-vocab-phi-3.gguf");
  ASSERT_NE(tok, nullptr);
  ASSERT_EQ(tok->token_text(32007), "<|end|>");
  const auto hi = tok->encode("hi", false, false);
  std::vector<int32_t> expected = {32007};
  expected.insert(expected.end(), hi.begin(), hi.end());
  EXPECT_EQ(tok->encode("<|end|>\n  hi", false, true), expected);
  EXPECT_TRUE(tok->is_end_of_generation(32007));
  EXPECT_TRUE(tok->is_end_of_generation(32000));  // eos, <|endoftext|>
}

TEST(TokenizerMetadata, Gpt2Defaults) {
  ATTN_REQUIRE_FIXTURES();
  const Tokenizer* tok = fixture_tokenizer("tokenizer/ggml-vocab/ggml-vocab-gpt-2.gguf");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->model(), "gpt2");
  EXPECT_EQ(tok->pre(), "gpt-2");
  EXPECT_EQ(tok->bos_id(), 50256);
  EXPECT_FALSE(tok->add_bos());  // llama.cpp: only some pre-tokenizers (llama3, ...) add BOS
  EXPECT_EQ(tok->eot_id(), 50256);  // found by its text, "<|endoftext|>"
  EXPECT_TRUE(tok->is_end_of_generation(50256));
  EXPECT_EQ(tok->token_to_piece(50256), "");
  EXPECT_EQ(tok->token_to_piece(50256, true), "<|endoftext|>");
  const auto ids = tok->encode(" Hello", false, false);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(tok->token_text(ids[0]), "\xc4\xa0Hello");  // "ĠHello"
  EXPECT_EQ(tok->token_to_piece(ids[0]), " Hello");
}

TEST(TokenizerMetadata, QwenEndOfGeneration) {
  ATTN_REQUIRE_FIXTURES();
  const Tokenizer* tok = fixture_tokenizer("models/qwen2/model-f32.gguf");
  ASSERT_NE(tok, nullptr);
  EXPECT_TRUE(tok->is_end_of_generation(3072));  // <|endoftext|>
  EXPECT_TRUE(tok->is_end_of_generation(3074));  // <|im_end|>
  EXPECT_FALSE(tok->is_end_of_generation(3073));  // <|im_start|>
  EXPECT_EQ(tok->encode("<|im_start|>user", false, true).front(), 3073);
  EXPECT_NE(tok->encode("<|im_start|>user", false, false).front(), 3073);
}

}  // namespace
}  // namespace attnscope
