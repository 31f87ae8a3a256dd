// Causal self-attention of one layer over a batch of query rows, materialising the
// softmax probabilities that observers receive.
#pragma once

#include <cstdint>
#include <vector>

#include "attnscope/model.h"
#include "attnscope/observer.h"
#include "model/thread_pool.h"

namespace attnscope::model {

struct AttentionInput {
  const ModelConfig* config = nullptr;
  int32_t layer = 0;
  int32_t pos0 = 0;          // absolute position of the first query row
  int32_t n_tokens = 0;      // query rows in this batch
  const float* q = nullptr;  // (n_tokens, n_heads * head_dim), RoPE applied
  const float* k = nullptr;  // (pos0 + n_tokens, n_kv_heads * head_dim): this layer's cache
  const float* v = nullptr;  // (pos0 + n_tokens, n_kv_heads * head_dim_v)
  int32_t q_chunk = 64;      // query rows per block handed to the observer
};

// out: (n_tokens, n_heads * head_dim_v). probs_scratch is grown to
// (n_heads, q_chunk, pos0 + n_tokens) as needed.
void attention(const AttentionInput& in, float* out, std::vector<float>* probs_scratch,
               Observer* observer, ThreadPool* pool);

}  // namespace attnscope::model
