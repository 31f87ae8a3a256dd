// A Session runs one token sequence through a Model: it owns the KV cache and the
// scratch buffers, and evaluates batches of tokens at the next positions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "attnscope/model.h"
#include "attnscope/observer.h"
#include "attnscope/result.h"

namespace attnscope {

class ThreadPool;

// How activations enter the matrix products with quantized weights.
enum class Activations {
  // Quantized to 8 bits per 32-element block, with integer dot products, as llama.cpp
  // does (quant::ActBlock): fast; attention differs from the f32 arithmetic by about
  // 1e-3. F32/F16/BF16 weights and formats without an int8 kernel stay in f32.
  kInt8,
  // Kept in f32 for every weight type: the arithmetic of the reference implementations
  // on dequantized weights (attention within about 1e-5 of transformers), slower.
  kF32,
};

struct SessionOptions {
  int32_t n_ctx = 0;       // maximum positions; 0 = the model's training context
  int32_t n_threads = 0;   // 0 = the number of physical cores
  int32_t n_batch = 256;   // prompt tokens per forward pass
  int32_t q_chunk = 64;    // query rows per attention block handed to observers
  Activations activations = Activations::kInt8;
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(std::shared_ptr<const Model> model,
                                                 const SessionOptions& options = {});
  ~Session();

  // Evaluates `tokens` at positions n_past() .. n_past() + size - 1, in batches of
  // n_batch. Afterwards logits() holds the next-token scores after the last token,
  // or after every token when all_logits is set.
  Status eval(std::span<const int32_t> tokens, Observer* observer = nullptr,
              bool all_logits = false);

  // (n_out, n_vocab): one row per token of the last eval() when all_logits, else one.
  std::span<const float> logits() const { return logits_; }
  std::span<const float> last_logits() const;

  // Allocates the KV cache for n_positions (at most n_ctx()) now. Without it the cache
  // grows geometrically as tokens arrive, which may leave up to half of it unused and
  // briefly holds the old and the new cache while growing; callers that know the final
  // length (generate) reserve it once.
  void reserve(int32_t n_positions) { reserve_cache(std::min(n_positions, n_ctx_)); }

  int32_t n_past() const { return n_past_; }
  int32_t n_ctx() const { return n_ctx_; }
  void reset() { n_past_ = 0; }
  const Model& model() const { return *model_; }
  int32_t n_threads() const;

 private:
  Session() = default;
  Status eval_batch(std::span<const int32_t> tokens, Observer* observer, bool all_logits);

  std::shared_ptr<const Model> model_;
  const ModelWeights* weights_ = nullptr;  // model_'s, packed for the int8 path
  SessionOptions options_;
  std::unique_ptr<ThreadPool> pool_;
  int32_t n_ctx_ = 0;
  int32_t n_past_ = 0;
  void reserve_cache(int32_t n_positions);
  int32_t cache_capacity_ = 0;               // positions allocated in each layer's cache
  std::vector<std::vector<float>> k_cache_;  // (n_layers)(cache_capacity, n_kv_heads * head_dim)
  std::vector<std::vector<float>> v_cache_;  // (n_layers)(cache_capacity, n_kv_heads * head_dim_v)
  std::vector<float> logits_;   // (n_out, n_vocab)
  struct Buffers;                // activations of one batch, kept between calls
  std::unique_ptr<Buffers> buf_;
};

// Physical cores of this machine (falls back to the logical count).
int32_t default_thread_count();

}  // namespace attnscope
