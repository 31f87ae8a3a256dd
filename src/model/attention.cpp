#include "model/attention.h"

#include <algorithm>
#include <cmath>

#include "attnscope/quant.h"
#include "model/ops.h"

namespace attnscope::model {
namespace {

// Probabilities of query position p (head h) over keys [0, n_keys) into `row`, and the
// weighted sum of values into `out` (head_dim_v floats).
void attend_row(const AttentionInput& in, int32_t h, int32_t p, const float* q_head, float* row,
                int32_t n_keys, float* out) {
  const ModelConfig& c = *in.config;
  const int32_t g = h / (c.n_heads / c.n_kv_heads);  // GQA: KV head read by query head h
  const int64_t k_stride = int64_t{c.n_kv_heads} * c.head_dim;
  const int64_t v_stride = int64_t{c.n_kv_heads} * c.head_dim_v;
  // Keys a query may see: causal, and within the sliding window when there is one.
  const int32_t lo = c.sliding_window > 0 ? std::max(0, p - c.sliding_window + 1) : 0;
  const int32_t hi = p;  // inclusive

  std::fill(row, row + lo, 0.0f);
  std::fill(row + hi + 1, row + n_keys, 0.0f);
  const int32_t n_seen = hi - lo + 1;
  float* seen = row + lo;  // (n_seen) scores, then probabilities
  quant::attention_scores(q_head, in.k + lo * k_stride + int64_t{g} * c.head_dim, k_stride, n_seen, c.head_dim,
                          c.attn_scale, seen);
  if (c.attn_softcap > 0.0f) {
    for (int32_t j = 0; j < n_seen; ++j) seen[j] = c.attn_softcap * std::tanh(seen[j] / c.attn_softcap);
  }
  const float max = *std::max_element(seen, seen + n_seen);
  const float inv = 1.0f / quant::exp_shifted(seen, n_seen, max);
  for (int32_t j = 0; j < n_seen; ++j) seen[j] *= inv;
  quant::attention_values(seen, in.v + lo * v_stride + int64_t{g} * c.head_dim_v, v_stride, n_seen, c.head_dim_v,
                          out);
}

}  // namespace

void attention(const AttentionInput& in, float* out, std::vector<float>* probs_scratch,
               Observer* observer, ThreadPool* pool) {
  const ModelConfig& c = *in.config;
  const int64_t q_stride = int64_t{c.n_heads} * c.head_dim;
  const int64_t out_stride = int64_t{c.n_heads} * c.head_dim_v;
  const int32_t chunk = std::max(1, in.q_chunk);

  for (int32_t r0 = 0; r0 < in.n_tokens; r0 += chunk) {
    const int32_t n_rows = std::min(chunk, in.n_tokens - r0);
    const int32_t n_keys = in.pos0 + r0 + n_rows;
    const size_t need = static_cast<size_t>(c.n_heads) * n_rows * n_keys;
    if (probs_scratch->size() < need) probs_scratch->resize(need);
    float* probs = probs_scratch->data();  // (n_heads, n_rows, n_keys)

    pool->parallel_for(int64_t{c.n_heads} * n_rows, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int32_t h = static_cast<int32_t>(task / n_rows);
        const int32_t r = static_cast<int32_t>(task % n_rows);
        const int32_t t = r0 + r;  // row within the batch
        attend_row(in, h, in.pos0 + t, in.q + t * q_stride + int64_t{h} * c.head_dim,
                   probs + (int64_t{h} * n_rows + r) * n_keys, n_keys,
                   out + t * out_stride + int64_t{h} * c.head_dim_v);
      }
    });

    if (observer != nullptr && observer->wants_attention()) {
      observer->on_attention(AttentionRows{.layer = in.layer, .n_heads = c.n_heads,
                                           .q_begin = in.pos0 + r0, .n_rows = n_rows,
                                           .n_keys = n_keys, .probs = probs});
    }
  }
}

}  // namespace attnscope::model
