// Byte-level BPE (tokenizer.ggml.model = "gpt2") building blocks, used by tokenizer.cpp:
// the pre-tokenizer chosen by tokenizer.ggml.pre, the GPT-2 byte<->unicode mapping,
// and rank-ordered merges over one pre-token.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "attnscope/result.h"

namespace attnscope::tokenizer {

// Splits text into pre-tokens with the regex sequence llama.cpp / Hugging Face use for a
// given tokenizer.ggml.pre value (default/gpt-2, llama-bpe, qwen2, deepseek-llm,
// deepseek-coder, falcon, mpt, starcoder, refact, gpt-neox, ...). Regexes are PCRE2 (UTF mode).
class PreTokenizer {
 public:
  // An error names the unknown pre-tokenizer and lists the known ones.
  static Result<PreTokenizer> create(std::string_view pre_name);
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Pre-tokens in order; concatenated they give back `text` (after any normalisation
  // the pre-tokenizer applies, e.g. NFC for qwen2, if the reference applies it).
  std::vector<std::string> split(std::string_view text) const;

  struct Impl;

 private:
  explicit PreTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// GPT-2's reversible byte -> printable-unicode mapping ("Ġ" for a space).
std::string bytes_to_unicode(std::string_view bytes);
// The inverse; characters outside the mapping are kept as their UTF-8 bytes.
std::string unicode_to_bytes(std::string_view text);

// Merge table over vocabulary strings (already in the byte->unicode alphabet).
class BpeMerges {
 public:
  // tokens: tokenizer.ggml.tokens; merges: tokenizer.ggml.merges ("a b" per entry).
  static Result<BpeMerges> create(const std::vector<std::string>& tokens,
                                  const std::vector<std::string>& merges);
  // Appends the ids of one pre-token (raw bytes; mapped to the unicode alphabet here).
  // Symbols with no vocabulary entry fall back to per-byte tokens where they exist.
  void encode_word(std::string_view word, std::vector<int32_t>* out) const;

 private:
  std::unordered_map<std::string, int32_t> token_to_id_;
  std::unordered_map<std::string, int32_t> merge_rank_;  // key: left + ' ' + right
};

}  // namespace attnscope::tokenizer
