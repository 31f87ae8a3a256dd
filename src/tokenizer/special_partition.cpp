#include "tokenizer/special_partition.h"

#include <cctype>

namespace attnscope::tokenizer {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Splits the text fragment `f` at every occurrence of token `id`, appending to `out`.
void split_fragment(const Vocab& vocab, std::string_view text, const Fragment& f, int32_t id,
                    std::vector<Fragment>* out) {
  const std::string& needle = vocab.tokens[id];
  const uint32_t attr = vocab.attrs[id];
  size_t offset = f.offset;
  size_t length = f.length;
  while (length > 0) {
    const size_t match = text.substr(0, offset + length).find(needle, offset);
    if (match == std::string_view::npos) {
      out->push_back(Fragment{-1, offset, length});
      return;
    }
    size_t left_length = match - offset;
    if (attr & kAttrLstrip) {
      while (left_length > 0 && is_space(text[offset + left_length - 1])) --left_length;
    }
    if (left_length > 0) out->push_back(Fragment{-1, offset, left_length});
    out->push_back(Fragment{id, 0, 0});

    size_t right_offset = match + needle.size();
    size_t right_length = offset + length - right_offset;
    if (attr & kAttrRstrip) {
      while (right_length > 0 && is_space(text[right_offset])) {
        ++right_offset;
        --right_length;
      }
    }
    offset = right_offset;
    length = right_length;
  }
}

}  // namespace

std::vector<Fragment> partition_special(const Vocab& vocab, std::string_view text, bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back(Fragment{-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : vocab.special_tokens) {
    if (!parse_special && (vocab.attrs[id] & (kAttrControl | kAttrUnknown))) continue;
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
      } else {
        split_fragment(vocab, text, f, id, &next);
      }
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace attnscope::tokenizer
