// Byte-level BPE building blocks (src/tokenizer/bpe.h) against the reference vectors:
//  * tokenizer/ggml-vocab/ggml-vocab-<name>.gguf with .inp/.out (llama.cpp's
//    test-tokenizer-0 vectors, add_special=false, parse_special=false);
//  * tokenizer/vectors/<name>.json, cases without special-token text, against
//    llama_cpp_ids_add_special_0_parse_special_0.
// Each text goes through PreTokenizer::split and BpeMerges::encode_word per pre-token.
// llama.cpp matches user-defined tokens in the raw text first even with parse_special=false
// (MPT has user-defined runs of spaces); the test does that partition itself, as llama.cpp's
// tokenizer_st_partition does, since special tokens are tokenizer.cpp's business.
// Plus unit tests of the byte mapping, merge order, fallbacks and hostile input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/gguf.h"
#include "support/fixtures.h"
#include "tokenizer/bpe.h"

namespace attnscope::tokenizer {
namespace {

using attnscope::testing::fixture_path;

constexpr int32_t kUserDefined = 4;  // tokenizer.ggml.token_type

struct BpeModel {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::string pre;
  PreTokenizer pre_tokenizer;
  BpeMerges merges;
  std::vector<int32_t> user_defined;  // ids, longest text first
};

std::vector<std::string> string_array(const gguf::File& file, const char* key) {
  std::vector<std::string> out;
  auto arr = file.get_array(key);
  if (!arr.ok()) {
    ADD_FAILURE() << arr.error().message;
    return out;
  }
  for (const gguf::Value& v : (*arr)->items) {
    const std::string* s = v.as_string();
    out.push_back(s ? *s : std::string());
  }
  return out;
}

// Loads tokens, types, merges and pre from a fixture GGUF; nullptr (with a failure) on error.
std::unique_ptr<BpeModel> load_model(const std::string& relative) {
  auto file = gguf::File::open(fixture_path(relative));
  if (!file.ok()) {
    ADD_FAILURE() << file.error().message;
    return nullptr;
  }
  auto model_name = file->get_string("tokenizer.ggml.model");
  if (!model_name.ok() || *model_name != "gpt2") {
    ADD_FAILURE() << relative << ": not a byte-level BPE vocabulary";
    return nullptr;
  }
  auto pre_name = file->get_string_or("tokenizer.ggml.pre", "");
  if (!pre_name.ok()) {
    ADD_FAILURE() << pre_name.error().message;
    return nullptr;
  }
  auto pre = PreTokenizer::create(*pre_name);
  if (!pre.ok()) {
    ADD_FAILURE() << relative << ": " << pre.error().message;
    return nullptr;
  }
  std::vector<std::string> tokens = string_array(*file, "tokenizer.ggml.tokens");
  auto merges = BpeMerges::create(tokens, string_array(*file, "tokenizer.ggml.merges"),
                                  pre->ignore_merges());
  if (!merges.ok()) {
    ADD_FAILURE() << relative << ": " << merges.error().message;
    return nullptr;
  }
  auto model = std::unique_ptr<BpeModel>(new BpeModel{std::move(tokens), {}, *pre_name,
                                                      std::move(*pre), std::move(*merges), {}});
  if (auto types = file->get_array("tokenizer.ggml.token_type"); types.ok()) {
    for (const gguf::Value& v : (*types)->items) {
      model->types.push_back(static_cast<int32_t>(v.as_int().value_or(1)));
    }
  }
  for (size_t id = 0; id < model->types.size() && id < model->tokens.size(); ++id) {
    if (model->types[id] == kUserDefined) model->user_defined.push_back(static_cast<int32_t>(id));
  }
  std::stable_sort(model->user_defined.begin(), model->user_defined.end(), [&](int32_t a, int32_t b) {
    return model->tokens[a].size() > model->tokens[b].size();
  });
  return model;
}

// llama.cpp's tokenize(add_special=false, parse_special=false) for a BPE model: user-defined
// token text is cut out of the raw text first (longest token first), the rest is split and
// merged.
std::vector<int32_t> encode(const BpeModel& m, const std::string& text) {
  struct Fragment {
    int32_t token;  // -1 for raw text
    std::string text;
  };
  std::vector<Fragment> fragments = {{-1, text}};
  for (int32_t id : m.user_defined) {
    const std::string& needle = m.tokens[id];
    std::vector<Fragment> next;
    for (Fragment& f : fragments) {
      if (f.token >= 0 || f.text.find(needle) == std::string::npos) {
        next.push_back(std::move(f));
        continue;
      }
      size_t pos = 0;
      for (size_t hit; (hit = f.text.find(needle, pos)) != std::string::npos; pos = hit + needle.size()) {
        if (hit > pos) next.push_back({-1, f.text.substr(pos, hit - pos)});
        next.push_back({id, ""});
      }
      if (pos < f.text.size()) next.push_back({-1, f.text.substr(pos)});
    }
    fragments = std::move(next);
  }
  std::vector<int32_t> ids;
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      ids.push_back(f.token);
      continue;
    }
    for (const std::string& word : m.pre_tokenizer.split(f.text)) m.merges.encode_word(word, &ids);
  }
  return ids;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) {
    out += ' ';
    out += std::to_string(id);
  }
  return out;
}

// "deepseek-llm" -> "deepseek_llm" (gtest names allow only alphanumerics and '_').
std::string test_name(const ::testing::TestParamInfo<const char*>& param) {
  std::string name = param.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// ---- llama.cpp's ggml-vocab vectors --------------------------------------------------

class GgmlVocab : public ::testing::TestWithParam<const char*> {};

TEST_P(GgmlVocab, MatchesLlamaCppVectors) {
  ATTN_REQUIRE_FIXTURES();
  const std::string base = std::string("tokenizer/ggml-vocab/ggml-vocab-") + GetParam() + ".gguf";
  auto model = load_model(base);
  ASSERT_NE(model, nullptr);

  const std::string inp = read_file(fixture_path(base + ".inp"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
    texts.push_back(inp.substr(pos, hit - pos));
  }
  std::vector<std::string> expected;
  std::istringstream out(read_file(fixture_path(base + ".out")));
  for (std::string line; std::getline(out, line);) expected.push_back(line);
  ASSERT_EQ(texts.size(), expected.size()) << base;
  ASSERT_FALSE(texts.empty());

  size_t passed = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string got = ids_to_string(encode(*model, texts[i]));
    if (got == expected[i]) {
      ++passed;
    } else {
      ADD_FAILURE() << base << " vector " << i << " (pre " << model->pre << ")\n  text: "
                    << ::testing::PrintToString(texts[i]) << "\n  want:" << expected[i]
                    << "\n  got: " << got;
    }
  }
  std::cout << "[ vectors  ] " << base << ": " << passed << "/" << texts.size() << " passed\n";
}

INSTANTIATE_TEST_SUITE_P(Bpe, GgmlVocab,
                         ::testing::Values("gpt-2", "deepseek-llm", "deepseek-coder", "falcon",
                                           "mpt", "starcoder", "refact"),
                         test_name);

// ---- tokenizer/vectors/*.json ----------------------------------------------------------

class JsonVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(JsonVectors, MatchesLlamaCppIds) {
  ATTN_REQUIRE_FIXTURES();
  const std::string path = std::string("tokenizer/vectors/") + GetParam() + ".json";
  const auto doc = nlohmann::json::parse(read_file(fixture_path(path)), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << path;
  auto model = load_model(doc["files"]["gguf"].get<std::string>());
  ASSERT_NE(model, nullptr);

  size_t passed = 0;
  size_t total = 0;
  for (const auto& c : doc["cases"]) {
    if (c["contains_special_token_text"].get<bool>()) continue;
    ++total;
    const std::string text = c["text"].get<std::string>();
    const auto want = c["llama_cpp_ids_add_special_0_parse_special_0"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = encode(*model, text);
    if (got == want) {
      ++passed;
    } else {
      ADD_FAILURE() << path << " (pre " << model->pre << ")\n  text: "
                    << ::testing::PrintToString(text) << "\n  want:" << ids_to_string(want)
                    << "\n  got: " << ids_to_string(got);
    }
  }
  EXPECT_GT(total, 0u);
  std::cout << "[ vectors  ] " << path << ": " << passed << "/" << total << " passed\n";
}

INSTANTIATE_TEST_SUITE_P(Bpe, JsonVectors,
                         ::testing::Values("gpt2", "gpt_neox", "qwen2", "qwen3", "phi", "full-gpt2"),
                         test_name);

// ---- Byte mapping ----------------------------------------------------------------------

std::string all_bytes() {
  std::string s;
  for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

TEST(BytesToUnicode, KnownCharacters) {
  EXPECT_EQ(bytes_to_unicode(" "), "\xC4\xA0");   // Ġ
  EXPECT_EQ(bytes_to_unicode("\n"), "\xC4\x8A");  // Ċ
  EXPECT_EQ(bytes_to_unicode("a!~"), "a!~");
  EXPECT_EQ(bytes_to_unicode("\xAD"), "\xC5\x83");  // soft hyphen -> U+0143, the last one
  EXPECT_EQ(bytes_to_unicode(""), "");
}

TEST(BytesToUnicode, RoundTripsEveryByte) {
  const std::string bytes = all_bytes();
  const std::string mapped = bytes_to_unicode(bytes);
  EXPECT_EQ(unicode_to_bytes(mapped), bytes);
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    EXPECT_EQ(unicode_to_bytes(bytes_to_unicode(one)), one) << b;
  }
}

TEST(UnicodeToBytes, KeepsCharactersOutsideTheMapping) {
  EXPECT_EQ(unicode_to_bytes("\xE2\x96\x81x"), "\xE2\x96\x81x");  // ▁ is not in the mapping
  EXPECT_EQ(unicode_to_bytes("\xFF\xC4"), "\xFF\xC4");            // invalid UTF-8 kept as is
}

// ---- Merges on a synthetic vocabulary --------------------------------------------------

// Byte tokens 0..255 (as mapped characters), then `extra` tokens; merges as given.
BpeMerges synthetic(const std::vector<std::string>& extra, const std::vector<std::string>& merges,
                    std::vector<std::string>* tokens_out = nullptr, bool ignore_merges = false) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(bytes_to_unicode(std::string(1, static_cast<char>(b))));
  tokens.insert(tokens.end(), extra.begin(), extra.end());
  auto bpe = BpeMerges::create(tokens, merges, ignore_merges);
  EXPECT_TRUE(bpe.ok());
  if (tokens_out) *tokens_out = tokens;
  return std::move(bpe).value();
}

std::string decode(const std::vector<std::string>& tokens, const std::vector<int32_t>& ids) {
  std::string mapped;
  for (int32_t id : ids) mapped += tokens.at(id);
  return unicode_to_bytes(mapped);
}

TEST(BpeMerges, LowestRankFirstAndLeftmostOnTies) {
  // 256 = "aa", 257 = "ab", 258 = "aab"
  const BpeMerges bpe = synthetic({"aa", "ab", "aab"}, {"a b", "a a", "a ab"});
  std::vector<int32_t> ids;
  bpe.encode_word("aaa", &ids);  // "a a" at 0-1 and 1-2: the left one wins
  EXPECT_EQ(ids, (std::vector<int32_t>{256, 'a'}));
  ids.clear();
  bpe.encode_word("aab", &ids);  // "a b" (rank 0) before "a a", then "a ab"
  EXPECT_EQ(ids, (std::vector<int32_t>{258}));
}

TEST(BpeMerges, IgnoreMergesTakesWholeTokens) {
  // "abc" is a token but no merge builds it.
  const BpeMerges plain = synthetic({"abc"}, {});
  const BpeMerges ignoring = synthetic({"abc"}, {}, nullptr, /*ignore_merges=*/true);
  std::vector<int32_t> ids;
  plain.encode_word("abc", &ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{'a', 'b', 'c'}));
  ids.clear();
  ignoring.encode_word("abc", &ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{256}));
}

TEST(BpeMerges, SymbolWithoutTokenFallsBackToByteTokens) {
  // The merge "a b" builds "ab", which is not in the vocabulary: llama.cpp emits the
  // tokens of its bytes.
  const BpeMerges bpe = synthetic({}, {"a b"});
  std::vector<int32_t> ids;
  bpe.encode_word("ab", &ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{'a', 'b'}));
}

TEST(BpeMerges, CreateRejectsEmptyVocabulary) {
  auto bpe = BpeMerges::create({}, {});
  ASSERT_FALSE(bpe.ok());
  EXPECT_NE(bpe.error().message.find("empty"), std::string::npos);
}

TEST(BpeMerges, PathologicalLongWordFinishesAndRoundTrips) {
  std::vector<std::string> tokens;
  const BpeMerges bpe = synthetic({"aa", "aaaa", "aaaaaaaa"}, {"a a", "aa aa", "aaaa aaaa"}, &tokens);
  const std::string word(20000, 'a');
  std::vector<int32_t> ids;
  bpe.encode_word(word, &ids);
  EXPECT_EQ(ids.size(), 2500u);
  EXPECT_EQ(decode(tokens, ids), word);

  // Alternating bytes with no merges at all.
  std::string mixed;
  for (int i = 0; i < 20000; ++i) mixed.push_back(static_cast<char>(i % 256));
  ids.clear();
  bpe.encode_word(mixed, &ids);
  EXPECT_EQ(decode(tokens, ids), mixed);
}

// ---- Pre-tokenizers --------------------------------------------------------------------

std::vector<std::string> split(std::string_view pre, std::string_view text) {
  auto p = PreTokenizer::create(pre);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return p.ok() ? p->split(text) : std::vector<std::string>{};
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello world  123 don't"),
            (Pieces{"Hello", " world", " ", " 123", " don", "'t"}));
  EXPECT_EQ(split("gpt-2", "a \t\nb  "), (Pieces{"a", " \t", "\n", "b", "  "}));
}

TEST(PreTokenizer, Llama3) {
  EXPECT_EQ(split("llama-bpe", "1234567 I'M ok\n\n  x"),
            (Pieces{"123", "456", "7", " I", "'M", " ok", "\n\n", " ", " x"}));
}

TEST(PreTokenizer, Qwen2SplitsDigits) {
  EXPECT_EQ(split("qwen2", "x=42"), (Pieces{"x", "=", "4", "2"}));
}

TEST(PreTokenizer, NonAsciiWhitespaceIsWhitespace) {
  // U+3000 ideographic space and U+0085 next line count as \s (Unicode White_Space).
  EXPECT_EQ(split("gpt-2", "a\xE3\x80\x80\xE3\x80\x80" "b"), (Pieces{"a", "\xE3\x80\x80", "\xE3\x80\x80", "b"}));
  EXPECT_EQ(split("llama-bpe", "a\xC2\x85" "b"), (Pieces{"a", "\xC2\x85" "b"}));
}

TEST(PreTokenizer, MissingNameIsDefault) {
  auto p = PreTokenizer::create("");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name(), "default");
  EXPECT_EQ(p->split("a+b 1234"), (Pieces{"a", "+", "b", " ", "123", "4"}));
}

TEST(PreTokenizer, UnknownNameListsKnownOnes) {
  auto p = PreTokenizer::create("no-such-pre");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("no-such-pre"), std::string::npos);
  EXPECT_NE(p.error().message.find("llama-bpe"), std::string::npos);
  EXPECT_NE(p.error().message.find("qwen2"), std::string::npos);
}

TEST(PreTokenizer, EveryKnownNameCompilesAndReassembles) {
  const std::string text =
      "Hello, World! It's 2024-01-01 12:34 \xE4\xBD\xA0\xE5\xA5\xBD \xD0\x9C\xD0\xB8\xD1\x80 "
      "caf\xC3\xA9 e\xCC\x81 \xF0\x9F\xA6\x99~`|\n\n  \t x  ";
  for (const std::string& name : PreTokenizer::known_names()) {
    auto p = PreTokenizer::create(name);
    ASSERT_TRUE(p.ok()) << name << ": " << p.error().message;
    std::string joined;
    for (const std::string& piece : p->split(text)) {
      EXPECT_FALSE(piece.empty()) << name;
      joined += piece;
    }
    EXPECT_EQ(joined, text) << name;
  }
}

TEST(PreTokenizer, EmptyText) { EXPECT_TRUE(split("llama-bpe", "").empty()); }

TEST(PreTokenizer, InvalidUtf8BecomesReplacementCharacters) {
  // Each byte of an ill-formed sequence becomes U+FFFD, as llama.cpp does.
  const std::string text = "ab\xFF\xC3 x\xE2\x82 \xED\xA0\x80\xC0\x80";
  std::string joined;
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "bloom"}) {
    joined.clear();
    for (const std::string& piece : split(name, text)) joined += piece;
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(joined, "ab" + fffd + fffd + " x" + fffd + fffd + " " + fffd + fffd + fffd + fffd + fffd)
        << name;
  }
}

TEST(PreTokenizer, InvalidUtf8EncodesAndRoundTripsTheRepairedText) {
  std::vector<std::string> tokens;
  const BpeMerges bpe = synthetic({}, {}, &tokens);
  const std::string text = "\x80\xFE\xFF ok \xF0\x9F";
  auto p = PreTokenizer::create("gpt-2");
  ASSERT_TRUE(p.ok());
  std::vector<int32_t> ids;
  std::string joined;
  for (const std::string& piece : p->split(text)) {
    joined += piece;
    bpe.encode_word(piece, &ids);
  }
  EXPECT_EQ(decode(tokens, ids), joined);
  // encode_word itself takes any bytes.
  ids.clear();
  bpe.encode_word(text, &ids);
  EXPECT_EQ(decode(tokens, ids), text);
}

TEST(PreTokenizer, LongInputsFinish) {
  for (const char* name : {"gpt-2", "llama-bpe", "gpt-4o", "tekken", "deepseek-v3"}) {
    for (const std::string& text : {std::string(100000, ' ') + "x", std::string(100000, 'a'),
                                    std::string(50000, '1'), std::string(30000, '!') + "\n"}) {
      std::string joined;
      for (const std::string& piece : split(name, text)) joined += piece;
      EXPECT_EQ(joined, text) << name;
    }
  }
}

TEST(NormalizeNfc, ComposesAndKeepsInvalidInput) {
  EXPECT_EQ(normalize_nfc("e\xCC\x81"), "\xC3\xA9");  // e + combining acute -> é
  EXPECT_EQ(normalize_nfc("abc"), "abc");
  EXPECT_EQ(normalize_nfc("\xFF"), "\xFF");
  EXPECT_EQ(normalize_nfc(""), "");
}

}  // namespace
}  // namespace attnscope::tokenizer
