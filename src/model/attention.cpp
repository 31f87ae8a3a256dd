// Causal self-attention, one layer, materialising every softmax probability.
//
// Work is split into tasks of (KV head, some of its query heads, a few query rows). With
// grouped-query attention several query heads read the same keys and values; a task
// walks the keys in blocks of kKeyBlock and lets all of its queries read a block while
// it is in L1, instead of each query streaming the whole K and V of its head from L2 or
// memory. Every score, probability and output is still computed by the same kernels in
// the same order as one query at a time would (blocks start at fixed key positions,
// attention_values_heads adds in key order), so results do not depend on the task shape.
#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "attnscope/quant.h"
#include "model/ops.h"

namespace attnscope::model {
namespace {

// Keys per block: 64 rows of one head's K (or V), 16 KB at head size 64.
constexpr int32_t kKeyBlock = 64;
// Query rows per task: each K / V block is read once for (rows × query heads) queries.
constexpr int32_t kRowsPerTask = 4;

// Query heads [h0, h1) of KV head g at batch rows [r0, r1) of the current chunk.
struct Task {
  int32_t g, h0, h1, r0, r1;
};

// The keys query position p may see, [lo, hi]: causal, and within the sliding window
// when there is one.
std::pair<int32_t, int32_t> visible_keys(const ModelConfig& c, int32_t p) {
  return {c.sliding_window > 0 ? std::max(0, p - c.sliding_window + 1) : 0, p};
}

// The part of key block [j0, j0 + kKeyBlock) a query that sees [lo, hi] reads: [a, b).
std::pair<int32_t, int32_t> in_block(int32_t j0, int32_t lo, int32_t hi) {
  return {std::max(j0, lo), std::min(j0 + kKeyBlock, hi + 1)};
}

// Per chunk: where the queries, probability rows and outputs of a task live.
struct Chunk {
  const AttentionInput* in;
  int32_t r0;      // first batch row of the chunk
  int32_t n_rows;  // rows in the chunk
  int32_t n_keys;  // keys the last row sees (the probability rows' length)
  float* probs;    // (n_heads, n_rows, n_keys)
  float* out;      // (n_tokens, n_heads * head_dim_v)

  int32_t position(int32_t r) const { return in->pos0 + r0 + r; }
  const float* q(int32_t h, int32_t r) const {
    const ModelConfig& c = *in->config;
    return in->q + int64_t{r0 + r} * c.n_heads * c.head_dim + int64_t{h} * c.head_dim;
  }
  float* row(int32_t h, int32_t r) const { return probs + (int64_t{h} * n_rows + r) * n_keys; }
  float* output(int32_t h, int32_t r) const {
    const ModelConfig& c = *in->config;
    return out + int64_t{r0 + r} * c.n_heads * c.head_dim_v + int64_t{h} * c.head_dim_v;
  }
};

// Calls fn(r, a, b) for every key block of the task, and in it for every row r with the
// keys [a, b) of the block that the row's queries (the task's heads) see. Blocks sit on
// a fixed grid of key positions, so how the work is split never changes which keys go
// together.
template <typename Fn>
void for_each_block(const Chunk& ch, const Task& t, Fn fn) {
  const ModelConfig& c = *ch.in->config;
  const int32_t first = visible_keys(c, ch.position(t.r0)).first;
  const int32_t last = ch.position(t.r1 - 1);
  for (int32_t j0 = first / kKeyBlock * kKeyBlock; j0 <= last; j0 += kKeyBlock) {
    for (int32_t r = t.r0; r < t.r1; ++r) {
      const auto [lo, hi] = visible_keys(c, ch.position(r));
      const auto [a, b] = in_block(j0, lo, hi);
      if (a >= b) continue;
      fn(r, a, b);
    }
  }
}

// Scores, softmax and value sums of one task's queries.
void run_task(const Chunk& ch, const Task& t) {
  const ModelConfig& c = *ch.in->config;
  const int64_t k_stride = int64_t{c.n_kv_heads} * c.head_dim;
  const int64_t v_stride = int64_t{c.n_kv_heads} * c.head_dim_v;
  const float* k = ch.in->k + int64_t{t.g} * c.head_dim;    // (keys, k_stride) this KV head's column
  const float* v = ch.in->v + int64_t{t.g} * c.head_dim_v;  // (keys, v_stride)

  const int32_t n_q = t.h1 - t.h0;
  const int64_t q_stride = c.head_dim;                       // between heads of a row
  const int64_t row_stride = int64_t{ch.n_rows} * ch.n_keys;  // between heads' probability rows
  // 1. Scores, block by block: every query of the task reads a K block while it is
  //    cached, the heads of a row together (each key vector loaded once for them).
  for_each_block(ch, t, [&](int32_t r, int32_t a, int32_t b) {
    quant::attention_scores_heads(ch.q(t.h0, r), q_stride, n_q, k + a * k_stride, k_stride, b - a, c.head_dim,
                                  c.attn_scale, ch.row(t.h0, r) + a, row_stride);
  });
  // 2. Softmax of each row; zeros outside what the query sees.
  for (int32_t r = t.r0; r < t.r1; ++r) {
    const auto [lo, hi] = visible_keys(c, ch.position(r));
    const int32_t n_seen = hi - lo + 1;
    for (int32_t h = t.h0; h < t.h1; ++h) {
      float* row = ch.row(h, r);
      std::fill(row, row + lo, 0.0f);
      std::fill(row + hi + 1, row + ch.n_keys, 0.0f);
      float* seen = row + lo;  // (n_seen) scores, then probabilities
      if (c.attn_softcap > 0.0f) {
        for (int32_t j = 0; j < n_seen; ++j) seen[j] = c.attn_softcap * std::tanh(seen[j] / c.attn_softcap);
      }
      const float max = quant::max_value(seen, n_seen);
      const float inv = 1.0f / quant::exp_shifted(seen, n_seen, max);
      for (int32_t j = 0; j < n_seen; ++j) seen[j] *= inv;
      std::fill(ch.output(h, r), ch.output(h, r) + c.head_dim_v, 0.0f);
    }
  }
  // 3. Weighted sums of the values, block by block (attention_values_heads adds in key order).
  for_each_block(ch, t, [&](int32_t r, int32_t a, int32_t b) {
    quant::attention_values_heads(ch.row(t.h0, r) + a, row_stride, n_q, v + a * v_stride, v_stride, b - a,
                                  c.head_dim_v, ch.output(t.h0, r), c.head_dim_v);
  });
}

// Tasks of a chunk of n_rows rows: KV heads outermost, so that the contiguous ranges of
// tasks the pool hands out share a KV head's keys and values. The query heads of a KV
// head are split only when there would otherwise be too few tasks for the threads (e.g.
// decoding one row with a single KV head).
std::vector<Task> make_tasks(const ModelConfig& c, int32_t n_rows, int32_t n_threads) {
  const int32_t group = c.n_heads / c.n_kv_heads;
  const int32_t row_blocks = (n_rows + kRowsPerTask - 1) / kRowsPerTask;
  int32_t splits = 1;
  while (splits < group && int64_t{c.n_kv_heads} * row_blocks * splits < 2 * int64_t{n_threads}) ++splits;
  const int32_t per_split = (group + splits - 1) / splits;
  std::vector<Task> tasks;
  for (int32_t g = 0; g < c.n_kv_heads; ++g) {
    for (int32_t h0 = g * group; h0 < (g + 1) * group; h0 += per_split) {
      for (int32_t r0 = 0; r0 < n_rows; r0 += kRowsPerTask) {
        tasks.push_back(Task{g, h0, std::min(h0 + per_split, (g + 1) * group), r0, std::min(r0 + kRowsPerTask, n_rows)});
      }
    }
  }
  return tasks;
}

}  // namespace

void attention(const AttentionInput& in, float* out, std::vector<float>* probs_scratch,
               Observer* observer, ThreadPool* pool) {
  const ModelConfig& c = *in.config;
  const int32_t chunk = std::max(1, in.q_chunk);

  for (int32_t r0 = 0; r0 < in.n_tokens; r0 += chunk) {
    const int32_t n_rows = std::min(chunk, in.n_tokens - r0);
    const int32_t n_keys = in.pos0 + r0 + n_rows;
    const size_t need = static_cast<size_t>(c.n_heads) * n_rows * n_keys;
    if (probs_scratch->size() < need) probs_scratch->resize(need);
    const Chunk ch{&in, r0, n_rows, n_keys, probs_scratch->data(), out};
    const std::vector<Task> tasks = make_tasks(c, n_rows, pool->size());
    pool->parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) run_task(ch, tasks[static_cast<size_t>(i)]);
    });

    if (observer != nullptr && observer->wants_attention()) {
      observer->on_attention(AttentionRows{
          .layer = in.layer, .n_heads = c.n_heads, .q_begin = in.pos0 + r0, .n_rows = n_rows, .n_keys = n_keys,
          .probs = ch.probs,
          .parallel = [](void* ctx, int64_t n, const RangeFn& fn) { static_cast<ThreadPool*>(ctx)->parallel_for(n, fn); },
          .parallel_ctx = pool});
    }
  }
}

}  // namespace attnscope::model
