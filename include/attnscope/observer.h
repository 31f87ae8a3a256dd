// Observers receive the engine's intermediates while it runs, in the shape of
// gemma.cpp's activation observers. Attention probabilities arrive in blocks of
// query rows so that no one ever has to hold a layer's whole (heads, T, T) tensor.
#pragma once

#include <cstdint>
#include <functional>

namespace attnscope {

using RangeFn = std::function<void(int64_t begin, int64_t end)>;

// Softmax attention probabilities of one layer for a block of consecutive query rows,
// after scaling, soft-capping and masking, exactly as the model uses them.
struct AttentionRows {
  int32_t layer = 0;
  int32_t n_heads = 0;   // query heads; head h reads KV head h / (n_heads / n_kv_heads)
  int32_t q_begin = 0;   // absolute position of the first query row
  int32_t n_rows = 0;    // query rows q_begin .. q_begin + n_rows - 1
  int32_t n_keys = 0;    // key positions 0 .. n_keys - 1 (= q_begin + n_rows)
  // (n_heads, n_rows, n_keys) row-major. Row r covers keys 0..n_keys-1; keys after its
  // own position q_begin + r, and keys outside a sliding window, are exactly 0.
  const float* probs = nullptr;
  // The engine's threads, idle while an observer runs: parallel(parallel_ctx, n, fn) calls
  // fn on disjoint ranges covering [0, n) and returns when all are done. Null when there
  // are none to offer; for_ranges() then runs fn(0, n) on the calling thread.
  void (*parallel)(void* ctx, int64_t n, const RangeFn& fn) = nullptr;
  void* parallel_ctx = nullptr;

  // Spreads work over the engine's threads, e.g. an observer copying every head's rows.
  void for_ranges(int64_t n, const RangeFn& fn) const {
    if (parallel != nullptr) {
      parallel(parallel_ctx, n, fn);
    } else if (n > 0) {
      fn(0, n);
    }
  }

  float at(int32_t head, int32_t row, int32_t key) const {
    return probs[(static_cast<int64_t>(head) * n_rows + row) * n_keys + key];
  }
};

// The residual stream after a layer (or the embeddings, or the final norm).
struct ResidualRows {
  int32_t index = 0;    // 0 = embeddings, k = after layer k-1, n_layers+1 = after the final norm
  int32_t pos_begin = 0;
  int32_t n_rows = 0;
  int32_t n_embd = 0;
  const float* values = nullptr;  // (n_rows, n_embd)
};

class Observer {
 public:
  virtual ~Observer() = default;
  // True if the engine must compute and deliver attention probabilities.
  virtual bool wants_attention() const { return true; }
  virtual void on_attention(const AttentionRows& rows) { (void)rows; }
  virtual bool wants_residual() const { return false; }
  virtual void on_residual(const ResidualRows& rows) { (void)rows; }
};

}  // namespace attnscope
