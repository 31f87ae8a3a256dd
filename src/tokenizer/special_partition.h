// Splitting raw text around special-token text before tokenization (llama.cpp's
// tokenizer_st_partition). Tokens are tried longest text first; each splits every
// remaining text fragment at all its non-overlapping occurrences, left to right.
// Control and unknown tokens are matched only with parse_special; user-defined tokens
// always (as Hugging Face does for added tokens). A token with the lstrip / rstrip
// attribute also swallows the whitespace to its left / right.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace attnscope::tokenizer {

struct Fragment {
  int32_t token = -1;  // a matched special token, or -1 for text
  size_t offset = 0;   // text: bytes [offset, offset + length) of the input
  size_t length = 0;
};

std::vector<Fragment> partition_special(const Vocab& vocab, std::string_view text, bool parse_special);

}  // namespace attnscope::tokenizer
