// TokenTextStream: token pieces out as text, never splitting a UTF-8 character.
// Pieces are token_to_piece(id) (control tokens give nothing) with no leading-space
// removal: the stream is meant for text that continues a prompt.
#include "attnscope/tokenizer.h"

namespace attnscope {
namespace {

// Bytes a UTF-8 sequence starting with `lead` should have (1 for invalid lead bytes).
size_t expected_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the prefix of `s` that does not end inside an incomplete UTF-8 sequence.
size_t complete_prefix(const std::string& s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if (is_continuation(c)) continue;
    return back < expected_length(c) ? n - back : n;
  }
  return n;  // only continuation bytes at the end: invalid, pass them through
}

}  // namespace

std::string TokenTextStream::push(int32_t id) {
  pending_ += tokenizer_->token_to_piece(id);
  const size_t ready = complete_prefix(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string TokenTextStream::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace attnscope
