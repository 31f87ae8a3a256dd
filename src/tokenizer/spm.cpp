// The SentencePiece merge loop as llama.cpp runs it. The text is split into UTF-8
// characters; every adjacent pair whose concatenation is a vocabulary token becomes a
// candidate; the candidate with the highest token score (ties: the leftmost) is merged
// first, and new candidates are formed with the neighbours, until none is left. Each
// final symbol is then emitted as its token, or, if it is not one (an unmerged character
// missing from the vocabulary), as one byte token (<0xAB>) per byte, or else the unknown token.
// (llama.cpp also keeps a map from merged text back to the pair that formed it, but it
// only consults it for symbols that are not tokens, and merged symbols always are.)
#include "tokenizer/spm.h"

#include <queue>
#include <string>

namespace attnscope::tokenizer {
namespace {

struct Symbol {
  int prev;
  int next;
  size_t offset;  // into the text
  size_t n;       // bytes; 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t size;
};

// Highest score first, then the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmSession {
 public:
  SpmSession(const Vocab& vocab, std::string_view text) : vocab_(vocab), text_(text) {}

  void run(std::vector<int32_t>* out) {
    for (size_t offset = 0; offset < text_.size();) {
      const size_t len = symbol_length(offset);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back(Symbol{index - 1, offset + len == text_.size() ? -1 : index + 1, offset, len});
      offset += len;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add_bigram(i - 1, i);

    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[bigram.left];
      Symbol& right = symbols_[bigram.right];
      // Stale candidate: one side was merged away or grew since it was queued.
      if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      try_add_bigram(left.prev, bigram.left);
      try_add_bigram(bigram.left, left.next);
    }

    if (symbols_.empty()) return;
    for (int i = 0; i != -1; i = symbols_[i].next) resegment(symbols_[i], out);
  }

 private:
  std::string_view text_of(const Symbol& s) const { return text_.substr(s.offset, s.n); }

  // One UTF-8 character. Deliberate difference from llama.cpp, for invalid UTF-8 only:
  // llama.cpp takes the length from the lead byte alone, so a stray lead byte swallows
  // the bytes after it (e.g. the first two bytes of an escaped space, which then come
  // back as "▁"); here a lead byte not followed by enough continuation bytes is a
  // symbol of its own, and falls back to its byte token.
  size_t symbol_length(size_t offset) const {
    const size_t len = utf8_sequence_length(static_cast<unsigned char>(text_[offset]));
    if (offset + len > text_.size()) return 1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(text_[offset + k]) & 0xC0) != 0x80) return 1;
    }
    return len;
  }

  void try_add_bigram(int left, int right) {
    if (left == -1 || right == -1) return;
    const std::string text(text_.substr(symbols_[left].offset, symbols_[left].n + symbols_[right].n));
    const int32_t id = vocab_.find(text);
    if (id < 0) return;
    queue_.push(Bigram{left, right, vocab_.scores[id], text.size()});
  }

  void resegment(const Symbol& symbol, std::vector<int32_t>* out) const {
    const std::string text(text_of(symbol));
    const int32_t id = vocab_.find(text);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
    const size_t start = out->size();
    for (char c : text) {
      const int32_t byte_id = vocab_.byte_to_token[static_cast<unsigned char>(c)];
      if (byte_id < 0) {
        // No byte fallback in this vocabulary (llama.cpp aborts here): one unknown
        // token for the character, as SentencePiece emits.
        out->resize(start);
        if (vocab_.unk_id >= 0) out->push_back(vocab_.unk_id);
        return;
      }
      out->push_back(byte_id);
    }
  }

  const Vocab& vocab_;
  std::string_view text_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
};

}  // namespace

void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>* out) {
  SpmSession(vocab, text).run(out);
}

}  // namespace attnscope::tokenizer
