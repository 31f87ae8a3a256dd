// SentencePiece-style tokenization of one text fragment (llama.cpp's llm_tokenizer_spm):
// score-driven merges of adjacent symbols, then byte fallback for what is left over.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace attnscope::tokenizer {

// `text` has its spaces already escaped to "▁". Appends the ids to `out`.
void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out);

// Length of the UTF-8 sequence that `lead` starts (1 for continuation or invalid bytes).
inline size_t utf8_sequence_length(unsigned char lead) {
  static constexpr size_t kByHighNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kByHighNibble[lead >> 4];
}

}  // namespace attnscope::tokenizer
