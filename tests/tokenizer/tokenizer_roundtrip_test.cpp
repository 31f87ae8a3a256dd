// decode(encode(text)) == text for vocabularies that can represent every byte
// (SentencePiece with byte fallback, byte-level BPE), on random byte strings and on
// the vector texts; and TokenTextStream emitting whole UTF-8 characters.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <iterator>
#include <ostream>
#include <random>
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

// Random bytes, biased towards the interesting ones: spaces, newlines, ASCII letters,
// and pieces of multi-byte UTF-8 (whole, truncated and stray continuation bytes).
std::string random_bytes(std::mt19937& rng, size_t max_len) {
  static const std::vector<std::string> kPieces = {
      " ", "  ", "\n", "\t", "a", "e", "the", "'s", "1", "12345", ".", "é", "東", "🦙",
      "\xe6\x9d", "\x80", "\xff", "\xc3", "\xf0\x9f", "\xed\xa0\x80", "\r\n", "\xe2\x80\x8b"};
  std::uniform_int_distribution<size_t> len_dist(0, max_len);
  std::uniform_int_distribution<int> kind(0, 2);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<size_t> piece(0, kPieces.size() - 1);
  std::string s;
  const size_t n = len_dist(rng);
  while (s.size() < n) {
    if (kind(rng) == 0) {
      s += static_cast<char>(byte(rng));
    } else {
      s += kPieces[piece(rng)];
    }
  }
  return s;
}

bool is_valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// Random valid UTF-8 text: ASCII, Latin-1, CJK and emoji characters, spaces and
// newlines (no control characters, which some byte-level vocabularies lack).
std::string random_text(std::mt19937& rng, size_t max_chars) {
  struct Range {
    uint32_t lo, hi;
  };
  static const Range kRanges[] = {{0x20, 0x7E}, {0x20, 0x20}, {0x0A, 0x0A}, {0x09, 0x09},
                                  {0xA0, 0xFF}, {0x4E00, 0x9FFF}, {0x1F300, 0x1F64F}};
  std::uniform_int_distribution<size_t> len_dist(0, max_chars);
  std::uniform_int_distribution<size_t> range_dist(0, std::size(kRanges) - 1);
  std::string s;
  for (size_t i = 0, n = len_dist(rng); i < n; ++i) {
    const Range r = kRanges[range_dist(rng)];
    const uint32_t cp = std::uniform_int_distribution<uint32_t>(r.lo, r.hi)(rng);
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return s;
}

struct RoundTripCase {
  std::string gguf;
  // Every single byte comes back (SentencePiece with byte fallback; byte-level BPE with a
  // token for each of the 256 bytes): round trip of arbitrary bytes, invalid UTF-8
  // included. Otherwise only valid text: several byte-level vocabularies have no usable
  // token for the bytes that never occur in UTF-8 (C0, C1, F5-FF; DeepSeek maps them to
  // user-defined tokens that decode as the characters "À", "Á", "õ", ...), and Falcon
  // none for some control characters.
  bool all_bytes;
};

void PrintTo(const RoundTripCase& c, std::ostream* os) { *os << c.gguf; }

class RoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(RoundTripTest, RandomInput) {
  ATTN_REQUIRE_FIXTURES();
  const RoundTripCase& param = GetParam();
  const Tokenizer* tok = fixture_tokenizer(param.gguf);
  ASSERT_NE(tok, nullptr);
  if (param.all_bytes) {
    for (int b = 0; b < 256; ++b) {
      const std::string s(1, static_cast<char>(b));
      EXPECT_EQ(tok->decode(tok->encode(s, false, false)), s) << "byte " << b;
    }
  }
  std::mt19937 rng(1234);
  int failures = 0;
  for (int i = 0; i < 300 && failures < 5; ++i) {
    const std::string text = param.all_bytes ? random_bytes(rng, 40) : random_text(rng, 30);
    const auto ids = tok->encode(text, /*add_special=*/true, /*parse_special=*/false);
    const std::string back = tok->decode(ids);
    if (back != text) {
      ++failures;
      ADD_FAILURE() << param.gguf << ": '" << escaped(text) << "' -> " << format_ids(ids)
                    << " -> '" << escaped(back) << "'";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Vocabs, RoundTripTest,
    ::testing::Values(RoundTripCase{"tokenizer/ggml-vocab/ggml-vocab-llama-spm.gguf", true},
                      RoundTripCase{"tokenizer/ggml-vocab/ggml-vocab-phi-3.gguf", true},
                      RoundTripCase{"models/gemma2/model-f32.gguf", true},
                      RoundTripCase{"models/mistral/model-f32.gguf", true},
                      RoundTripCase{"tokenizer/ggml-vocab/ggml-vocab-gpt-2.gguf", true},
                      RoundTripCase{"models/gpt2/model-f32.gguf", true},
                      RoundTripCase{"models/gpt_neox/model-f32.gguf", true},
                      RoundTripCase{"models/qwen2/model-f32.gguf", false},  // NFC: text only
                      RoundTripCase{"tokenizer/ggml-vocab/ggml-vocab-deepseek-llm.gguf", false},
                      RoundTripCase{"tokenizer/ggml-vocab/ggml-vocab-deepseek-coder.gguf", false},
                      RoundTripCase{"tokenizer/ggml-vocab/ggml-vocab-falcon.gguf", false},
                      RoundTripCase{"tokenizer/ggml-vocab/ggml-vocab-mpt.gguf", false},
                      RoundTripCase{"tokenizer/ggml-vocab/ggml-vocab-starcoder.gguf", false},
                      RoundTripCase{"tokenizer/ggml-vocab/ggml-vocab-refact.gguf", false}),
    [](const ::testing::TestParamInfo<RoundTripCase>& param) {
      // "tokenizer/ggml-vocab/ggml-vocab-gpt-2.gguf" -> gpt_2, "models/gpt2/..." -> model_gpt2
      const std::string& p = param.param.gguf;
      const size_t vocab = p.find("ggml-vocab-");
      std::string name = vocab != std::string::npos
                             ? p.substr(vocab + 11, p.find(".gguf") - vocab - 11)
                             : "model_" + p.substr(7, p.find('/', 7) - 7);
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

// The .inp strings of every ggml-vocab file come back from decode(encode(.)).
TEST(RoundTrip, GgmlVocabTexts) {
  ATTN_REQUIRE_FIXTURES();
  for (const char* name : {"llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder",
                           "falcon", "mpt", "starcoder", "refact"}) {
    const std::string base = std::string("tokenizer/ggml-vocab/ggml-vocab-") + name + ".gguf";
    const Tokenizer* tok = fixture_tokenizer(base);
    ASSERT_NE(tok, nullptr);
    const std::string inp = read_text_file(fixture_path(base + ".inp"));
    const std::string sep = "\n__ggml_vocab_test__\n";
    for (size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
      const std::string text = inp.substr(pos, hit - pos);
      EXPECT_EQ(tok->decode(tok->encode(text, false, false)), text) << base << " '" << escaped(text) << "'";
    }
  }
}

// ---- TokenTextStream ---------------------------------------------------------------

// Pushes every id; each output must be whole characters, and together (with flush) the
// concatenated pieces.
void check_stream(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  TokenTextStream stream(tok);
  std::string streamed;
  std::string pieces;
  for (int32_t id : ids) {
    const std::string out = stream.push(id);
    EXPECT_TRUE(is_valid_utf8(out)) << "'" << escaped(out) << "' after token " << id;
    streamed += out;
    pieces += tok.token_to_piece(id);
  }
  EXPECT_EQ(stream.flush(), "");
  EXPECT_EQ(streamed, pieces);
}

TEST(TokenTextStream, SpmByteFallbackCharacters) {
  ATTN_REQUIRE_FIXTURES();
  const Tokenizer* tok = fixture_tokenizer("tokenizer/ggml-vocab/ggml-vocab-llama-spm.gguf");
  ASSERT_NE(tok, nullptr);
  // 🦙 (4 bytes) and 🐱 are not Llama-2 pieces: byte fallback, one token per byte.
  const auto ids = tok->encode("llama 🦙 and 東京 cat 🐱!", false, false);
  int byte_tokens = 0;
  for (int32_t id : ids) byte_tokens += tok->token_type(id) == TokenType::kByte ? 1 : 0;
  ASSERT_GE(byte_tokens, 8);
  check_stream(*tok, ids);

  // The four byte tokens of 🦙: nothing until the last one completes it.
  const auto llama = tok->encode("🦙", false, false);
  ASSERT_EQ(llama.size(), 5u);  // "▁" then <0xF0> <0x9F> <0xA6> <0x99>
  TokenTextStream stream(*tok);
  EXPECT_EQ(stream.push(llama[0]), " ");
  EXPECT_EQ(stream.push(llama[1]), "");
  EXPECT_EQ(stream.push(llama[2]), "");
  EXPECT_EQ(stream.push(llama[3]), "");
  EXPECT_EQ(stream.push(llama[4]), "🦙");
  EXPECT_EQ(stream.flush(), "");
}

TEST(TokenTextStream, ByteLevelBpeCharacters) {
  ATTN_REQUIRE_FIXTURES();
  const Tokenizer* tok = fixture_tokenizer("models/gpt2/model-f32.gguf");
  ASSERT_NE(tok, nullptr);
  // The truncated GPT-2 vocabulary splits most non-ASCII characters into byte tokens.
  const std::string text = "naïve café 東京タワー 서울 🐱🐭 — “quotes”";
  const auto ids = tok->encode(text, false, false);
  ASSERT_GT(ids.size(), 20u);
  check_stream(*tok, ids);
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(TokenTextStream, FlushReturnsIncompleteTail) {
  ATTN_REQUIRE_FIXTURES();
  const Tokenizer* tok = fixture_tokenizer("tokenizer/ggml-vocab/ggml-vocab-llama-spm.gguf");
  ASSERT_NE(tok, nullptr);
  const int32_t e6 = 3 + 0xE6;  // <0xE6>: the first byte of a 3-byte character
  const int32_t x9d = 3 + 0x9D;
  ASSERT_EQ(tok->token_text(e6), "<0xE6>");
  TokenTextStream stream(*tok);
  EXPECT_EQ(stream.push(e6), "");
  EXPECT_EQ(stream.push(x9d), "");
  EXPECT_EQ(stream.flush(), "\xe6\x9d");
  EXPECT_EQ(stream.flush(), "");
  // An incomplete character followed by ASCII is invalid: passed through as is.
  EXPECT_EQ(stream.push(e6), "");
  EXPECT_EQ(stream.push(3 + 'a'), "\xe6" "a");  // <0x61>
  // Control tokens contribute nothing.
  EXPECT_EQ(stream.push(1), "");
}

}  // namespace
}  // namespace attnscope
