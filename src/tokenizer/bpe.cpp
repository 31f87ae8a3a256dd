// Byte-level BPE: GPT-2's byte <-> unicode mapping, and merges over one pre-token as
// llama.cpp's llm_tokenizer_bpe_session does them (lowest rank first, leftmost on ties;
// a final symbol that is not a token falls back to the tokens of its single bytes).
#include <utf8proc.h>

#include <cstdlib>
#include <limits>
#include <queue>
#include <string>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/bpe_internal.h"

namespace attnscope::tokenizer {
namespace {

// GPT-2's mapping: printable Latin-1 bytes stand for themselves, the other 68 bytes take
// the code points from U+0100 on, in byte order.
struct ByteMap {
  std::array<std::string, 256> to_unicode;
  std::array<int16_t, 0x144> to_byte;  // code point -> byte, -1 when not in the mapping
};

bool printable_byte(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

const ByteMap& byte_map() {
  static const ByteMap map = [] {
    ByteMap m;
    m.to_byte.fill(-1);
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cp = printable_byte(b) ? static_cast<uint32_t>(b) : next++;
      detail::append_utf8(cp, &m.to_unicode[b]);
      m.to_byte[cp] = static_cast<int16_t>(b);
    }
    return m;
  }();
  return map;
}

struct Symbol {
  int32_t sym;   // symbol id (see BpeMerges), -1 for a string that can take part in no merge
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
  uint32_t start;  // byte offset in the pre-token
  uint32_t len;    // bytes; 0 once merged into its left neighbour
};

struct Bigram {
  int32_t rank;
  int32_t left;
  int32_t right;
  int32_t left_sym;  // the symbols' ids when queued: a change means the entry is stale
  int32_t right_sym;
  int32_t result;
};

// std::priority_queue keeps the "largest" on top: make that the lowest rank, then the
// leftmost pair.
struct BigramAfter {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

std::string bytes_to_unicode(std::string_view bytes) {
  const ByteMap& map = byte_map();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += map.to_unicode[static_cast<uint8_t>(c)];
  return out;
}

std::string unicode_to_bytes(std::string_view text) {
  const ByteMap& map = byte_map();
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const uint32_t cp = detail::decode_utf8(text, &pos);
    const bool valid = !(cp == detail::kReplacementChar && pos == start + 1);
    if (valid && cp < map.to_byte.size() && map.to_byte[cp] >= 0) {
      out.push_back(static_cast<char>(map.to_byte[cp]));
    } else {
      out.append(text.substr(start, pos - start));
    }
  }
  return out;
}

std::string normalize_nfc(std::string_view text) {
  if (text.empty()) return {};
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &dst,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE |
                                                                         UTF8PROC_COMPOSE));
  if (n < 0 || dst == nullptr) return std::string(text);
  std::string out(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  std::free(dst);
  return out;
}

Result<BpeMerges> BpeMerges::create(const std::vector<std::string>& tokens,
                                    const std::vector<std::string>& merges, bool ignore_merges) {
  constexpr size_t kMaxSymbols = static_cast<size_t>(std::numeric_limits<int32_t>::max());
  if (tokens.empty()) return make_error("BPE vocabulary is empty (tokenizer.ggml.tokens)");
  if (tokens.size() + 2 * merges.size() >= kMaxSymbols) {
    return make_error("BPE vocabulary too large: {} tokens and {} merges", tokens.size(),
                      merges.size());
  }
  BpeMerges bpe;
  bpe.n_vocab_ = static_cast<int32_t>(tokens.size());
  bpe.ignore_merges_ = ignore_merges;
  bpe.token_to_id_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!tokens[i].empty()) bpe.token_to_id_.emplace(tokens[i], static_cast<int32_t>(i));
  }

  // Strings that are merge parts or results but not tokens get ids from n_vocab on.
  std::unordered_map<std::string, int32_t> extra;
  const auto intern = [&](const std::string& s) -> int32_t {
    if (auto it = bpe.token_to_id_.find(s); it != bpe.token_to_id_.end()) return it->second;
    auto [it, inserted] = extra.emplace(s, bpe.n_vocab_ + static_cast<int32_t>(extra.size()));
    return it->second;
  };
  bpe.merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& m = merges[rank];
    const size_t space = m.find(' ', 1);  // as llama.cpp: a part may start with a space
    if (space == std::string::npos) continue;
    const std::string left = m.substr(0, space);
    const std::string right = m.substr(space + 1);
    const int32_t l = intern(left);
    const int32_t r = intern(right);
    const int32_t result = intern(left + right);
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) |
                         static_cast<uint32_t>(r);
    bpe.merges_.emplace(key, Merge{static_cast<int32_t>(rank), result});
  }

  const ByteMap& map = byte_map();
  for (int b = 0; b < 256; ++b) {
    const std::string& s = map.to_unicode[b];
    if (auto it = bpe.token_to_id_.find(s); it != bpe.token_to_id_.end()) {
      bpe.byte_symbol_[b] = it->second;
    } else if (auto jt = extra.find(s); jt != extra.end()) {
      bpe.byte_symbol_[b] = jt->second;
    } else {
      bpe.byte_symbol_[b] = -1;
    }
  }
  return bpe;
}

void BpeMerges::encode_word(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = token_to_id_.find(bytes_to_unicode(word)); it != token_to_id_.end()) {
      out->push_back(it->second);
      return;
    }
  }

  if (word.size() >= static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    // Beyond the symbol indices' range (a 2 GiB pre-token): encode it in halves.
    encode_word(word.substr(0, word.size() / 2), out);
    encode_word(word.substr(word.size() / 2), out);
    return;
  }

  // One symbol per byte: each byte is one character of the mapped alphabet.
  const auto n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(static_cast<size_t>(n));  // (n_bytes)
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = Symbol{byte_symbol_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1,
                        static_cast<uint32_t>(i), 1};
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramAfter> queue;
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t l = symbols[left].sym;
    const int32_t r = symbols[right].sym;
    if (l < 0 || r < 0) return;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) |
                         static_cast<uint32_t>(r);
    const auto it = merges_.find(key);
    if (it == merges_.end()) return;
    queue.push(Bigram{it->second.rank, left, right, l, r, it->second.result});
  };
  for (int32_t i = 1; i < n; ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = symbols[b.left];
    Symbol& right = symbols[b.right];
    if (left.len == 0 || right.len == 0 || left.next != b.right || left.sym != b.left_sym ||
        right.sym != b.right_sym) {
      continue;  // one side has merged since this pair was queued
    }
    left.sym = b.result;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.sym >= 0 && s.sym < n_vocab_) {
      out->push_back(s.sym);
      continue;
    }
    // Not a token: llama.cpp looks up each byte of the mapped text as a one-byte token.
    const std::string mapped = bytes_to_unicode(word.substr(s.start, s.len));
    for (char c : mapped) {
      if (auto it = token_to_id_.find(std::string(1, c)); it != token_to_id_.end()) {
        out->push_back(it->second);
      }
    }
  }
}

}  // namespace attnscope::tokenizer
