// Tokenizers built from small GGUFs written in memory: bad metadata gives errors that
// name the key, and a tiny SentencePiece vocabulary shows the merge order, byte
// fallback and special-token matching on cases small enough to work out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "attnscope/gguf.h"
#include "attnscope/gguf_writer.h"
#include "attnscope/tokenizer.h"

namespace attnscope {
namespace {

using Fill = std::function<void(gguf::Writer&)>;

Result<Tokenizer> load(const Fill& fill) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  fill(w);
  auto bytes = w.serialize();
  if (!bytes.ok()) return std::move(bytes).error();
  auto file = gguf::File::parse(*bytes, "mem.gguf");
  if (!file.ok()) return std::move(file).error();
  return Tokenizer::from_gguf(*file);  // copies what it needs: the bytes may go
}

// <unk> <s> </s>, the 256 byte tokens, then a few pieces with scores, one user-defined
// token pair and one extra control token.
struct TinySpm {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};

  TinySpm() {
    for (int b = 0; b < 256; ++b) {
      static const char* kHex = "0123456789ABCDEF";
      tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
      scores.push_back(0);
      types.push_back(6);
    }
    add("\xe2\x96\x81", -1);  // "▁"
    add("a", -2);
    add("b", -3);
    add("c", -4);
    add("\xe2\x96\x81" "a", -5);
    add("ab", -0.5f);
    add("\xe2\x96\x81" "ab", -6);
    add("bc", -0.1f);
    add("<x>", 0, 4);
    add("<x><x>", 0, 4);
    add("<|ctl|>", 0, 3);
  }
  void add(const std::string& t, float score, int32_t type = 1) {
    tokens.push_back(t);
    scores.push_back(score);
    types.push_back(type);
  }
  int32_t id(const std::string& t) const {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] == t) return static_cast<int32_t>(i);
    }
    return -1;
  }
  void write(gguf::Writer& w) const {
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_array("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
    w.add_array("tokenizer.ggml.scores", std::span<const float>(scores));
    w.add_array("tokenizer.ggml.token_type", std::span<const int32_t>(types));
  }
};

const std::string kSp = "\xe2\x96\x81";

TEST(TinySpm, MergesHighestScoreFirst) {
  const TinySpm v;
  auto tok = load([&](gguf::Writer& w) { v.write(w); });
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  // "▁abc": bc (-0.1) beats ab (-0.5); then ▁a (-5); "▁abc" and "abc" are not pieces.
  EXPECT_EQ(tok->encode("abc", false, false),
            (std::vector<int32_t>{v.id(kSp + "a"), v.id("bc")}));
  // "▁ab": ab (-0.5) first, then ▁ + ab -> ▁ab.
  EXPECT_EQ(tok->encode("ab", false, false), (std::vector<int32_t>{v.id(kSp + "ab")}));
  // 'd' is not a piece: byte fallback.
  EXPECT_EQ(tok->encode("d", false, false), (std::vector<int32_t>{v.id(kSp), 3 + 'd'}));
  EXPECT_EQ(tok->encode("", true, false), (std::vector<int32_t>{1}));
  EXPECT_EQ(tok->encode("ab", true, false), (std::vector<int32_t>{1, v.id(kSp + "ab")}));
  EXPECT_EQ(tok->decode(tok->encode("d ab", true, false)), "d ab");
}

TEST(TinySpm, SpecialTokens) {
  const TinySpm v;
  auto tok = load([&](gguf::Writer& w) { v.write(w); });
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const int32_t x = v.id("<x>");
  const int32_t xx = v.id("<x><x>");
  const int32_t ctl = v.id("<|ctl|>");
  // User-defined tokens are matched even without parse_special; the text after a
  // special token gets the space prefix again (llama.cpp).
  EXPECT_EQ(tok->encode("a<x>b", false, false),
            (std::vector<int32_t>{v.id(kSp + "a"), x, v.id(kSp), v.id("b")}));
  // Longest first.
  EXPECT_EQ(tok->encode("<x><x><x>", false, false), (std::vector<int32_t>{xx, x}));
  // Control tokens only with parse_special.
  EXPECT_EQ(tok->encode("<|ctl|>ab", false, true), (std::vector<int32_t>{ctl, v.id(kSp + "ab")}));
  const auto plain = tok->encode("<|ctl|>ab", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), ctl), 0);
  EXPECT_EQ(tok->decode(plain), "<|ctl|>ab");
  EXPECT_EQ(tok->encode("<s>", true, true), (std::vector<int32_t>{1, 1}));
  EXPECT_EQ(tok->token_to_piece(x), "<x>");
  EXPECT_EQ(tok->token_to_piece(ctl), "");
  EXPECT_EQ(tok->token_to_piece(ctl, true), "<|ctl|>");
}

TEST(TinySpm, NoSpacePrefixAndAddEos) {
  const TinySpm v;
  auto tok = load([&](gguf::Writer& w) {
    v.write(w);
    w.add_bool("tokenizer.ggml.add_space_prefix", false);
    w.add_bool("tokenizer.ggml.add_bos_token", false);
    w.add_bool("tokenizer.ggml.add_eos_token", true);
  });
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ(tok->encode("ab", true, false), (std::vector<int32_t>{v.id("ab"), 2}));
  EXPECT_EQ(tok->encode(" ab", false, false), (std::vector<int32_t>{v.id(kSp + "ab")}));
  EXPECT_EQ(tok->decode(tok->encode(" ab", false, false)), " ab");
}

// ---- Errors --------------------------------------------------------------------------

void expect_error(const Result<Tokenizer>& r, const std::vector<std::string>& parts) {
  ASSERT_FALSE(r.ok());
  for (const std::string& p : parts) {
    EXPECT_NE(r.error().message.find(p), std::string::npos)
        << "'" << p << "' not in: " << r.error().message;
  }
}

TEST(TokenizerErrors, MissingTokens) {
  expect_error(load([](gguf::Writer& w) { w.add_string("tokenizer.ggml.model", "llama"); }),
               {"mem.gguf", "tokenizer.ggml.tokens", "missing"});
}

TEST(TokenizerErrors, MissingModel) {
  const TinySpm v;
  expect_error(load([&](gguf::Writer& w) {
                 w.add_array("tokenizer.ggml.tokens", std::span<const std::string>(v.tokens));
               }),
               {"mem.gguf", "tokenizer.ggml.model", "missing"});
}

TEST(TokenizerErrors, UnknownModel) {
  const TinySpm v;
  expect_error(load([&](gguf::Writer& w) {
                 w.add_string("tokenizer.ggml.model", "bert");
                 w.add_array("tokenizer.ggml.tokens", std::span<const std::string>(v.tokens));
               }),
               {"mem.gguf", "unsupported tokenizer model 'bert'", "supported: llama, gpt2"});
}

TEST(TokenizerErrors, ScoresLengthMismatch) {
  TinySpm v;
  v.scores.resize(100);
  expect_error(load([&](gguf::Writer& w) { v.write(w); }),
               {"mem.gguf", "tokenizer.ggml.scores has 100 entries, expected " +
                                std::to_string(v.tokens.size()) + " (one per token)"});
}

TEST(TokenizerErrors, TokenTypeLengthMismatch) {
  TinySpm v;
  v.types.pop_back();
  expect_error(load([&](gguf::Writer& w) { v.write(w); }), {"tokenizer.ggml.token_type", "entries"});
}

TEST(TokenizerErrors, BosOutOfRange) {
  const TinySpm v;
  expect_error(load([&](gguf::Writer& w) {
                 v.write(w);
                 w.add_uint32("tokenizer.ggml.bos_token_id", 40000);
               }),
               {"mem.gguf", "tokenizer.ggml.bos_token_id", "40000", std::to_string(v.tokens.size())});
}

TEST(TokenizerErrors, WrongTypes) {
  const TinySpm v;
  expect_error(load([&](gguf::Writer& w) {
                 w.add_string("tokenizer.ggml.model", "llama");
                 w.add_array("tokenizer.ggml.tokens", std::span<const int32_t>(v.types));
               }),
               {"tokenizer.ggml.tokens[0]", "expected a string"});
  expect_error(load([&](gguf::Writer& w) {
                 v.write(w);
                 w.add_string("tokenizer.ggml.eos_token_id", "2");
               }),
               {"tokenizer.ggml.eos_token_id", "expected an integer"});
  expect_error(load([&](gguf::Writer& w) {
                 v.write(w);
                 w.add_uint32("tokenizer.ggml.add_bos_token", 1);
               }),
               {"tokenizer.ggml.add_bos_token", "expected a bool"});
}

TEST(TokenizerErrors, DuplicateToken) {
  TinySpm v;
  v.add("ab", 0);
  expect_error(load([&](gguf::Writer& w) { v.write(w); }), {"tokenizer.ggml.tokens", "'ab'", "unique"});
}

TEST(TokenizerErrors, Gpt2WithoutMerges) {
  const std::vector<std::string> tokens = {"a", "b", "ab"};
  expect_error(load([&](gguf::Writer& w) {
                 w.add_string("tokenizer.ggml.model", "gpt2");
                 w.add_array("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
               }),
               {"tokenizer.ggml.merges", "missing"});
}

TEST(TokenizerErrors, UnknownPreTokenizer) {
  const std::vector<std::string> tokens = {"a", "b", "ab"};
  const std::vector<std::string> merges = {"a b"};
  expect_error(load([&](gguf::Writer& w) {
                 w.add_string("tokenizer.ggml.model", "gpt2");
                 w.add_string("tokenizer.ggml.pre", "no-such-pre");
                 w.add_array("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
                 w.add_array("tokenizer.ggml.merges", std::span<const std::string>(merges));
               }),
               {"tokenizer.ggml.pre", "no-such-pre"});
}

TEST(TokenizerErrors, AddBosWithoutBos) {
  // gpt2's default BOS id (11) is outside this 3-token vocabulary.
  const std::vector<std::string> tokens = {"a", "b", "ab"};
  const std::vector<std::string> merges = {"a b"};
  expect_error(load([&](gguf::Writer& w) {
                 w.add_string("tokenizer.ggml.model", "gpt2");
                 w.add_array("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
                 w.add_array("tokenizer.ggml.merges", std::span<const std::string>(merges));
                 w.add_bool("tokenizer.ggml.add_bos_token", true);
               }),
               {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id"});
}

}  // namespace
}  // namespace attnscope
