// model::attention against the textbook formula computed in double: random q, k, v of
// grouped-query shapes, sequences that cross several of the engine's key blocks, sliding
// windows and soft-capping, a batch starting after cached keys; and the same bits
// whatever the thread count and chunk size (the work split must not show in results).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "attnscope/model.h"
#include "model/attention.h"
#include "model/thread_pool.h"
#include "support/attention_collector.h"

namespace attnscope::model {
namespace {

struct Shape {
  int32_t n_heads, n_kv_heads, head_dim, head_dim_v, sliding_window;
  float softcap;
  int32_t pos0, n_tokens;
};

// The batch's probabilities as the observer received them (positions pos0 .. pos0 +
// n_tokens - 1 of a collector over every position; keys a chunk did not deliver read -1)
// and the attention output (n_tokens, n_heads * head_dim_v).
struct Result {
  std::unique_ptr<testing::AttentionCollector> probs;
  std::vector<float> out;
};

Result run(const ModelConfig& c, const Shape& s, const std::vector<float>& q, const std::vector<float>& k,
           const std::vector<float>& v, int32_t n_threads, int32_t q_chunk) {
  Result r{std::make_unique<testing::AttentionCollector>(1, c.n_heads, s.pos0 + s.n_tokens),
           std::vector<float>(static_cast<size_t>(s.n_tokens) * c.n_heads * c.head_dim_v, 7.0f)};
  std::vector<float> scratch;
  ThreadPool pool(n_threads);
  AttentionInput in{.config = &c, .layer = 0, .pos0 = s.pos0, .n_tokens = s.n_tokens, .q = q.data(),
                    .k = k.data(), .v = v.data(), .q_chunk = q_chunk};
  attention(in, r.out.data(), &scratch, r.probs.get(), &pool);
  EXPECT_EQ(r.probs->malformed(), 0);
  for (int32_t t = 0; t < s.n_tokens; ++t) EXPECT_EQ(r.probs->deliveries(0, s.pos0 + t), 1) << "row " << t;
  return r;
}

class AttentionTest : public ::testing::TestWithParam<Shape> {};

TEST_P(AttentionTest, MatchesTheFormulaInDoubleForAnySplitOfTheWork) {
  const Shape s = GetParam();
  ModelConfig c;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.head_dim = s.head_dim;
  c.head_dim_v = s.head_dim_v;
  c.sliding_window = s.sliding_window;
  c.attn_softcap = s.softcap;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int32_t n_keys = s.pos0 + s.n_tokens;
  std::mt19937 rng(static_cast<uint32_t>(s.n_heads * 131 + s.pos0));
  std::normal_distribution<float> normal(0.0f, 1.5f);
  const auto random = [&](size_t n) {
    std::vector<float> x(n);
    for (float& f : x) f = normal(rng);
    return x;
  };
  const auto q = random(static_cast<size_t>(s.n_tokens) * s.n_heads * s.head_dim);   // (n_tokens, n_heads * head_dim)
  const auto k = random(static_cast<size_t>(n_keys) * s.n_kv_heads * s.head_dim);    // (n_keys, n_kv_heads * head_dim)
  const auto v = random(static_cast<size_t>(n_keys) * s.n_kv_heads * s.head_dim_v);  // (n_keys, n_kv_heads * head_dim_v)

  const Result got = run(c, s, q, k, v, 1, 64);
  const int32_t group = s.n_heads / s.n_kv_heads;
  for (int32_t h = 0; h < s.n_heads; ++h) {
    const int32_t g = h / group;
    for (int32_t t = 0; t < s.n_tokens; ++t) {
      const int32_t p = s.pos0 + t;
      const int32_t lo = s.sliding_window > 0 ? std::max(0, p - s.sliding_window + 1) : 0;
      std::vector<double> w(static_cast<size_t>(n_keys), 0.0);
      double max = -INFINITY, sum = 0;
      for (int32_t j = lo; j <= p; ++j) {
        double dot = 0;
        for (int32_t d = 0; d < s.head_dim; ++d) {
          dot += double{q[(static_cast<size_t>(t) * s.n_heads + h) * s.head_dim + d]} *
                 k[(static_cast<size_t>(j) * s.n_kv_heads + g) * s.head_dim + d];
        }
        double score = dot * c.attn_scale;
        if (s.softcap > 0) score = s.softcap * std::tanh(score / s.softcap);
        w[j] = score;
        max = std::max(max, score);
      }
      for (int32_t j = lo; j <= p; ++j) sum += (w[j] = std::exp(w[j] - max));
      // Keys of the chunk of 64 rows this row was delivered in; later keys are not part of
      // its delivery (the collector leaves them at -1).
      const int32_t delivered = s.pos0 + std::min((t / 64 + 1) * 64, s.n_tokens);
      for (int32_t j = 0; j < n_keys; ++j) {
        const float prob = got.probs->at(0, h, p, j);
        if (j >= delivered) {
          ASSERT_EQ(prob, -1.0f) << "head " << h << " row " << p << " key " << j;
        } else if (j < lo || j > p) {
          ASSERT_EQ(prob, 0.0f) << "head " << h << " row " << p << " key " << j;  // masked: exactly 0
        } else {
          ASSERT_NEAR(prob, w[j] / sum, 2e-6 + 2e-5 * w[j] / sum) << "head " << h << " row " << p << " key " << j;
        }
      }
      for (int32_t d = 0; d < s.head_dim_v; ++d) {
        double want = 0, mag = 0;
        for (int32_t j = lo; j <= p; ++j) {
          const double x = w[j] / sum * v[(static_cast<size_t>(j) * s.n_kv_heads + g) * s.head_dim_v + d];
          want += x;
          mag += std::fabs(x);
        }
        const float o = got.out[(static_cast<size_t>(t) * s.n_heads + h) * s.head_dim_v + d];
        ASSERT_NEAR(o, want, 1e-5 * (1 + mag)) << "head " << h << " row " << p << " dim " << d;
      }
    }
  }
  // Threads and chunk sizes change how the work is split, never a bit of the result
  // (every key up to the row's own position; later ones depend on the chunk delivered).
  for (const auto& [threads, chunk] : {std::pair{2, 64}, std::pair{3, 7}, std::pair{2, 1}}) {
    const Result other = run(c, s, q, k, v, threads, chunk);
    for (int32_t h = 0; h < s.n_heads; ++h) {
      for (int32_t p = s.pos0; p < n_keys; ++p) {
        EXPECT_EQ(std::memcmp(&other.probs->at(0, h, p, 0), &got.probs->at(0, h, p, 0), (p + 1) * sizeof(float)), 0)
            << threads << " threads, chunks of " << chunk << ", head " << h << " row " << p;
      }
    }
    EXPECT_EQ(std::memcmp(other.out.data(), got.out.data(), got.out.size() * sizeof(float)), 0)
        << threads << " threads, chunks of " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionTest,
    ::testing::Values(
        // n_heads, n_kv_heads, head_dim, head_dim_v, window, softcap, pos0, n_tokens
        Shape{8, 2, 64, 64, 0, 0.0f, 0, 150},     // a prompt across three key blocks, GQA 4:1
        Shape{4, 1, 80, 48, 70, 0.0f, 0, 160},    // one KV head, odd head sizes, a window crossing blocks
        Shape{6, 3, 32, 32, 0, 5.0f, 0, 70},      // soft-capping
        Shape{8, 8, 64, 64, 0, 0.0f, 130, 37},    // a batch after 130 cached keys (no GQA)
        Shape{4, 2, 64, 64, 50, 0.0f, 199, 1},    // decoding one token at position 199, windowed
        Shape{8, 1, 64, 64, 0, 0.0f, 300, 1}),    // decoding with a single KV head: heads split across threads
    [](const ::testing::TestParamInfo<Shape>& param) { return "shape" + std::to_string(param.index); });

}  // namespace
}  // namespace attnscope::model
