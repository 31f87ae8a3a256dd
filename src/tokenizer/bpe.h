// Byte-level BPE (tokenizer.ggml.model = "gpt2") building blocks, used by tokenizer.cpp:
// the pre-tokenizer chosen by tokenizer.ggml.pre, the GPT-2 byte<->unicode mapping,
// and rank-ordered merges over one pre-token.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "attnscope/result.h"

namespace attnscope::tokenizer {

// Splits text into pre-tokens with the regex sequence llama.cpp uses for a given
// tokenizer.ggml.pre value (default/gpt-2, llama-bpe, qwen2, deepseek-llm, deepseek-coder,
// falcon, mpt, starcoder, refact, ...; known_names() lists them all). Regexes run on PCRE2
// over the same stand-in text llama.cpp's std::regex sees (see pretokenizer.cpp), so the
// pieces match llama.cpp's. No Unicode normalisation is applied (llama.cpp applies none;
// see normalize_nfc()).
class PreTokenizer {
 public:
  // "" means "default" (llama.cpp's choice for a missing tokenizer.ggml.pre).
  // An error names the unknown pre-tokenizer and lists the known ones.
  static Result<PreTokenizer> create(std::string_view pre_name);
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Every tokenizer.ggml.pre value create() accepts.
  static std::vector<std::string> known_names();

  const std::string& name() const;
  // llama.cpp's ignore_merges for this pre-tokenizer (llama-bpe, tekken): a pre-token
  // that is a whole vocabulary entry is emitted as that token without merging.
  bool ignore_merges() const;

  // Pre-tokens in order (raw bytes, not yet byte-mapped); concatenated they give back
  // `text`. Invalid UTF-8 is repaired first as llama.cpp does: each byte of an ill-formed
  // sequence becomes U+FFFD, so then they concatenate to the repaired text.
  std::vector<std::string> split(std::string_view text) const;

  struct Impl;

 private:
  explicit PreTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Unicode NFC (utf8proc). Hugging Face's qwen2 pipeline applies it before pre-tokenizing;
// llama.cpp does not. Not applied by PreTokenizer: the caller decides. Text that is not
// valid UTF-8 is returned unchanged.
std::string normalize_nfc(std::string_view text);

// GPT-2's reversible byte -> printable-unicode mapping ("Ġ" for a space).
std::string bytes_to_unicode(std::string_view bytes);
// The inverse; characters outside the mapping are kept as their UTF-8 bytes.
std::string unicode_to_bytes(std::string_view text);

// Merge table over vocabulary strings (already in the byte->unicode alphabet).
// Encoding follows llama.cpp's llm_tokenizer_bpe_session: the lowest-ranked adjacent pair
// is merged first (leftmost on ties), with a priority queue over linked symbols, so a
// long pre-token costs O(n log n).
class BpeMerges {
 public:
  // tokens: tokenizer.ggml.tokens; merges: tokenizer.ggml.merges ("a b" per entry; the
  // rank is the position, and a repeated pair keeps its first rank). ignore_merges: see
  // PreTokenizer::ignore_merges(). Duplicate tokens keep their first id.
  static Result<BpeMerges> create(const std::vector<std::string>& tokens,
                                  const std::vector<std::string>& merges,
                                  bool ignore_merges = false);
  // Appends the ids of one pre-token (raw bytes; mapped to the unicode alphabet here).
  // A final symbol with no vocabulary entry falls back, as in llama.cpp, to the tokens
  // of its single (mapped) bytes where those exist; bytes without one are dropped.
  void encode_word(std::string_view word, std::vector<int32_t>* out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // symbol id of left + right
  };
  // Symbol ids: a vocabulary token's id, or n_vocab + k for a string that only occurs
  // as a merge part or result.
  int32_t n_vocab_ = 0;
  bool ignore_merges_ = false;
  std::unordered_map<std::string, int32_t> token_to_id_;
  std::unordered_map<uint64_t, Merge> merges_;  // key: left symbol << 32 | right symbol
  std::array<int32_t, 256> byte_symbol_{};      // symbol id of each byte's mapped character
};

}  // namespace attnscope::tokenizer
