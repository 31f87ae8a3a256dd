// Aggregates: the arithmetic on hand-computed 3x3 examples and known closed forms,
// the restricted (q, k) computations against a dense reference written independently
// here, and RunReader::aggregate through a real stored run.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "attnscope/store.h"
#include "store/aggregate_math.h"

namespace attnscope::store {
namespace {

using Matrix = std::vector<float>;  // (n, n) row-major

// ---- Hand-made examples ----

const Matrix kHead0 = {1.0f, 0, 0,  //
                       0.5f, 0.5f, 0,  //
                       0.2f, 0.3f, 0.5f};
const Matrix kHead1 = {1.0f, 0, 0,  //
                       1.0f, 0, 0,  //
                       0, 0, 1.0f};

void expect_near(const Matrix& got, const Matrix& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << what << " at " << i;
}

TEST(AggregateMath, HeadMeanOfTwoHeadsIsTheirAverage) {
  MeanAccumulator mean(9);
  mean.add(kHead0);
  mean.add(kHead1);
  EXPECT_EQ(mean.count(), 2);
  expect_near(mean.mean(), {1, 0, 0, 0.75f, 0.25f, 0, 0.1f, 0.15f, 0.75f}, 1e-7, "mean");
}

TEST(AggregateMath, HeadMaxIsElementwise) {
  MaxAccumulator max(9);
  max.add(kHead0);
  max.add(kHead1);
  EXPECT_EQ(max.max(), (Matrix{1, 0, 0, 1, 0.5f, 0, 0.2f, 0.3f, 1}));
}

TEST(AggregateMath, OneRolloutStepIsHalfAttentionHalfIdentity) {
  const Matrix a = {1, 0, 0, 0.75f, 0.25f, 0, 0.1f, 0.15f, 0.75f};  // the head mean above
  RolloutChain chain({0, 3}, {0, 3});
  chain.step(a, {0, 3});
  expect_near(chain.matrix(), {1, 0, 0, 0.375f, 0.625f, 0, 0.05f, 0.075f, 0.875f}, 1e-7, "R_0");
  // R_1 = Â Â, by hand:
  //   row 1: [0.375 + 0.625*0.375, 0.625^2, 0]
  //   row 2: [0.05 + 0.075*0.375 + 0.875*0.05, 0.075*0.625 + 0.875*0.075, 0.875^2]
  chain.step(a, {0, 3});
  expect_near(chain.matrix(), {1, 0, 0, 0.609375f, 0.390625f, 0, 0.121875f, 0.1125f, 0.765625f}, 1e-7, "R_1");
}

TEST(AggregateMath, RolloutOfIdentityAttentionIsIdentity) {
  constexpr int n = 5;
  Matrix eye(n * n, 0.0f);
  for (int i = 0; i < n; ++i) eye[i * n + i] = 1.0f;
  RolloutChain chain({0, n}, {0, n});
  for (int l = 0; l < 6; ++l) {
    chain.step(eye, {0, n});
    EXPECT_EQ(chain.matrix(), eye) << "after layer " << l;
  }
}

TEST(AggregateMath, EveryoneAttendingToTokenZeroConcentratesOnColumnZero) {
  // A[j, 0] = 1: Â[j] = (e0 + ej) / 2, so R_l[j] = (1 - 2^-(l+1)) e0 + 2^-(l+1) ej for j > 0.
  constexpr int n = 4;
  Matrix a(n * n, 0.0f);
  for (int j = 0; j < n; ++j) a[j * n] = 1.0f;
  RolloutChain chain({0, n}, {0, n});
  for (int l = 0; l < 5; ++l) {
    chain.step(a, {0, n});
    const float self = std::ldexp(1.0f, -(l + 1));
    const Matrix& r = chain.matrix();
    EXPECT_EQ(r[0], 1.0f);
    for (int j = 1; j < n; ++j) {
      EXPECT_EQ(r[j * n], 1.0f - self) << "layer " << l << " row " << j;
      EXPECT_EQ(r[j * n + j], self) << "layer " << l << " row " << j;
      EXPECT_GE(r[j * n], 0.5f);
    }
  }
}

// ---- Random causal runs and an independent dense reference ----

struct Synthetic {
  int32_t n_layers, n_heads, n;
  std::vector<Matrix> heads;  // [layer * n_heads + head]: (n, n)
  const Matrix& at(int32_t l, int32_t h) const { return heads[static_cast<size_t>(l * n_heads + h)]; }
};

// Softmax-like causal rows; some entries exactly zero (as a sliding window makes them).
Synthetic random_run(int32_t n_layers, int32_t n_heads, int32_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  Synthetic run{n_layers, n_heads, n, {}};
  for (int32_t i = 0; i < n_layers * n_heads; ++i) {
    Matrix m(static_cast<size_t>(n * n), 0.0f);
    for (int32_t q = 0; q < n; ++q) {
      float sum = 0;
      for (int32_t k = 0; k <= q; ++k) {
        const float v = u(rng) < 0.2f && k != q ? 0.0f : u(rng) * u(rng);
        m[q * n + k] = v;
        sum += v;
      }
      for (int32_t k = 0; k <= q; ++k) m[q * n + k] /= sum;
    }
    run.heads.push_back(std::move(m));
  }
  return run;
}

HeadSource source_of(const Synthetic& run) {
  HeadSource src;
  src.name = "mem";
  src.n_layers = run.n_layers;
  src.n_heads = run.n_heads;
  src.n_rows = run.n;
  src.read = [&run](int32_t l, int32_t h, Range q, Range k) -> Result<std::vector<float>> {
    const Matrix& m = run.at(l, h);
    std::vector<float> out;
    for (int32_t i = q.begin; i < q.end; ++i) {
      for (int32_t j = k.begin; j < k.end; ++j) out.push_back(m[i * run.n + j]);
    }
    return out;
  };
  return src;
}

using Dense = std::vector<double>;

Dense dense_head_mean(const Synthetic& run, int32_t l) {
  Dense out(static_cast<size_t>(run.n * run.n), 0.0);
  for (int32_t h = 0; h < run.n_heads; ++h) {
    for (size_t i = 0; i < out.size(); ++i) out[i] += run.at(l, h)[i] / run.n_heads;
  }
  return out;
}

// R_layer = Â_layer ... Â_0 with Â = (A + I) / rowsum(A + I), full dense products.
Dense dense_rollout(const Synthetic& run, int32_t layer) {
  const int32_t n = run.n;
  Dense r(static_cast<size_t>(n * n), 0.0);
  for (int32_t i = 0; i < n; ++i) r[i * n + i] = 1.0;
  for (int32_t l = 0; l <= layer; ++l) {
    Dense a = dense_head_mean(run, l);
    for (int32_t i = 0; i < n; ++i) {
      a[i * n + i] += 1.0;
      double s = 0;
      for (int32_t j = 0; j < n; ++j) s += a[i * n + j];
      for (int32_t j = 0; j < n; ++j) a[i * n + j] /= s;
    }
    Dense next(static_cast<size_t>(n * n), 0.0);
    for (int32_t i = 0; i < n; ++i) {
      for (int32_t j = 0; j < n; ++j) {
        for (int32_t m = 0; m < n; ++m) next[i * n + j] += a[i * n + m] * r[m * n + j];
      }
    }
    r = std::move(next);
  }
  return r;
}

Dense dense_aggregate(const Synthetic& run, Aggregate kind, int32_t layer, int32_t head) {
  const size_t nn = static_cast<size_t>(run.n * run.n);
  Dense out(nn, 0.0);
  switch (kind) {
    case Aggregate::kNone:
      for (size_t i = 0; i < nn; ++i) out[i] = run.at(layer, head)[i];
      return out;
    case Aggregate::kHeadMean: return dense_head_mean(run, layer);
    case Aggregate::kHeadMax:
      for (int32_t h = 0; h < run.n_heads; ++h) {
        for (size_t i = 0; i < nn; ++i) out[i] = std::max<double>(out[i], run.at(layer, h)[i]);
      }
      return out;
    case Aggregate::kLayerMean:
      for (int32_t l = 0; l < run.n_layers; ++l) {
        const Dense m = dense_head_mean(run, l);
        for (size_t i = 0; i < nn; ++i) out[i] += m[i] / run.n_layers;
      }
      return out;
    case Aggregate::kRollout: return dense_rollout(run, layer);
  }
  return out;
}

void expect_matches_dense(const std::vector<float>& got, const Dense& full, int32_t n, Range q, Range k,
                          const std::string& what) {
  ASSERT_EQ(got.size(), static_cast<size_t>(q.size() * k.size())) << what;
  for (int32_t i = 0; i < q.size(); ++i) {
    for (int32_t j = 0; j < k.size(); ++j) {
      const float v = got[static_cast<size_t>(i * k.size() + j)];
      const int32_t qi = q.begin + i, kj = k.begin + j;
      if (kj > qi) {
        EXPECT_EQ(v, 0.0f) << what << ": above the diagonal at (" << qi << ", " << kj << ")";
      } else {
        EXPECT_NEAR(v, full[static_cast<size_t>(qi * n + kj)], 2e-6) << what << " at (" << qi << ", " << kj << ")";
      }
    }
  }
}

constexpr Aggregate kAllKinds[] = {Aggregate::kNone, Aggregate::kHeadMean, Aggregate::kHeadMax,
                                   Aggregate::kLayerMean, Aggregate::kRollout};

TEST(AggregateMath, FullRolloutRowsSumToOneAndStayCausal) {
  const Synthetic run = random_run(4, 3, 9, 7);
  const HeadSource src = source_of(run);
  for (int32_t layer = 0; layer < run.n_layers; ++layer) {
    auto r = compute_aggregate(src, Aggregate::kRollout, layer, 0, {0, 9}, {0, 9});
    ASSERT_TRUE(r.ok()) << r.error().message;
    for (int32_t q = 0; q < 9; ++q) {
      double sum = 0;
      for (int32_t k = 0; k < 9; ++k) {
        sum += (*r)[q * 9 + k];
        if (k > q) {
          EXPECT_EQ((*r)[q * 9 + k], 0.0f);
        }
      }
      EXPECT_NEAR(sum, 1.0, 1e-6) << "layer " << layer << " row " << q;
    }
  }
}

TEST(AggregateMath, EveryKindOnEveryRangeMatchesTheDenseReference) {
  const Synthetic run = random_run(3, 4, 11, 42);
  const HeadSource src = source_of(run);
  const std::vector<Range> ranges = {{0, 11}, {0, 1}, {3, 7}, {5, 11}, {10, 11}, {0, 4}, {2, 9}, {4, 5}};
  for (Aggregate kind : kAllKinds) {
    for (int32_t layer = 0; layer < run.n_layers; ++layer) {
      const Dense full = dense_aggregate(run, kind, layer, 2);
      for (Range q : ranges) {
        for (Range k : ranges) {
          auto got = compute_aggregate(src, kind, layer, 2, q, k);
          const std::string what = fmt::format("{} layer {} q [{}, {}) k [{}, {})", aggregate_name(kind), layer,
                                               q.begin, q.end, k.begin, k.end);
          ASSERT_TRUE(got.ok()) << what << ": " << got.error().message;
          expect_matches_dense(*got, full, run.n, q, k, what);
        }
      }
    }
  }
}

TEST(AggregateMath, RestrictedRolloutEqualsTheSliceOfTheFullOne) {
  // Same arithmetic whatever the range: the restricted result is the exact slice.
  const Synthetic run = random_run(5, 2, 16, 3);
  const HeadSource src = source_of(run);
  auto full = compute_aggregate(src, Aggregate::kRollout, 4, 0, {0, 16}, {0, 16});
  ASSERT_TRUE(full.ok());
  auto part = compute_aggregate(src, Aggregate::kRollout, 4, 0, {9, 14}, {0, 16});
  ASSERT_TRUE(part.ok());
  for (int32_t i = 0; i < 5; ++i) {
    for (int32_t k = 0; k < 16; ++k) EXPECT_EQ((*part)[i * 16 + k], (*full)[(9 + i) * 16 + k]);
  }
}

TEST(AggregateMath, BadArgumentsAreErrorsNamingTheValue) {
  const Synthetic run = random_run(2, 2, 4, 1);
  const HeadSource src = source_of(run);
  auto layer = compute_aggregate(src, Aggregate::kHeadMean, 2, 0, {0, 4}, {0, 4});
  ASSERT_FALSE(layer.ok());
  EXPECT_EQ(layer.error().message, "mem: aggregate head-mean: layer 2 is out of range: the run has layers 0-1");
  auto head = compute_aggregate(src, Aggregate::kNone, 0, -1, {0, 4}, {0, 4});
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.error().message, "mem: aggregate none: head -1 is out of range: the run has heads 0-1");
  auto q = compute_aggregate(src, Aggregate::kRollout, 0, 0, {2, 5}, {0, 4});
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().message, "mem: aggregate rollout: query range [2, 5) is not within the stored positions [0, 4)");
  auto k = compute_aggregate(src, Aggregate::kHeadMax, 0, 0, {0, 4}, {3, 2});
  ASSERT_FALSE(k.ok());
  // The layer is ignored by layer-mean; the head by everything but none.
  EXPECT_TRUE(compute_aggregate(src, Aggregate::kLayerMean, 99, 99, {0, 4}, {0, 4}).ok());
  EXPECT_TRUE(compute_aggregate(src, Aggregate::kHeadMax, 1, 99, {0, 4}, {0, 4}).ok());
  auto empty = compute_aggregate(src, Aggregate::kRollout, 1, 0, {2, 2}, {0, 4});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(AggregateNames, RoundTripAndErrorsListTheValidNames) {
  for (Aggregate kind : kAllKinds) {
    auto parsed = parse_aggregate(aggregate_name(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_STREQ(aggregate_name(Aggregate::kHeadMean), "head-mean");
  auto bad = parse_aggregate("mean");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "invalid aggregate: 'mean' (valid: none, head-mean, head-max, layer-mean, rollout)");
}

// ---- Through a real stored run ----

std::string temp_run_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "attnscope-tests" / "aggregate" / name;
  std::filesystem::remove_all(dir);
  return dir.string();
}

// Stores `run` (f32) with a prefill block of `n_prompt` rows, then one row per token.
void store_run(const Synthetic& run, int32_t n_prompt, const std::string& dir) {
  RunManifest m;
  m.model.name = "synthetic";
  m.model.n_layers = run.n_layers;
  m.model.n_heads = run.n_heads;
  m.prompt = "synthetic prompt";
  m.n_prompt = n_prompt;
  m.precision = Precision::kF32;
  m.n_layers = run.n_layers;
  m.n_heads = run.n_heads;
  for (int32_t i = 0; i < n_prompt; ++i) m.tokens.push_back(TokenRecord{100 + i, fmt::format("t{}", i)});
  auto writer = RunWriter::create(dir, m, /*overwrite=*/true);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  auto deliver = [&](int32_t q_begin, int32_t n_rows) {
    const int32_t n_keys = q_begin + n_rows;
    for (int32_t l = 0; l < run.n_layers; ++l) {
      std::vector<float> probs;  // (n_heads, n_rows, n_keys)
      for (int32_t h = 0; h < run.n_heads; ++h) {
        for (int32_t r = 0; r < n_rows; ++r) {
          for (int32_t k = 0; k < n_keys; ++k) probs.push_back(run.at(l, h)[(q_begin + r) * run.n + k]);
        }
      }
      AttentionRows rows{l, run.n_heads, q_begin, n_rows, n_keys, probs.data()};
      (*writer)->on_attention(rows);
    }
  };
  deliver(0, n_prompt);
  for (int32_t pos = n_prompt; pos < run.n; ++pos) {
    TokenRecord t{100 + pos, fmt::format("g{}", pos)};
    t.generated = true;
    ASSERT_TRUE((*writer)->add_generated_token(t).ok());
    m.tokens.push_back(t);
    deliver(pos, 1);
  }
  m.stop_reason = "length";
  m.complete = true;
  auto st = (*writer)->finish(m);
  ASSERT_TRUE(st.ok()) << st.error().message;
}

TEST(RunReaderAggregate, MatchesTheDenseReferenceThroughAStoredRun) {
  const Synthetic run = random_run(3, 4, 13, 11);
  const std::string dir = temp_run_dir("dense");
  store_run(run, 8, dir);
  if (HasFatalFailure()) return;
  auto reader = RunReader::open(dir);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  ASSERT_EQ((*reader)->n_rows(), 13);
  const HeadSource mem = source_of(run);
  const std::vector<Range> ranges = {{0, 13}, {0, 8}, {8, 13}, {5, 10}, {12, 13}};
  for (Aggregate kind : kAllKinds) {
    for (int32_t layer = 0; layer < run.n_layers; ++layer) {
      const Dense full = dense_aggregate(run, kind, layer, 3);
      for (Range q : ranges) {
        for (Range k : ranges) {
          const std::string what = fmt::format("{} layer {} q [{}, {}) k [{}, {})", aggregate_name(kind), layer,
                                               q.begin, q.end, k.begin, k.end);
          auto got = (*reader)->aggregate(kind, layer, 3, q, k);
          ASSERT_TRUE(got.ok()) << what << ": " << got.error().message;
          expect_matches_dense(*got, full, run.n, q, k, what);
          // f32 storage: the stored run aggregates exactly like the in-memory one.
          auto in_memory = compute_aggregate(mem, kind, layer, 3, q, k);
          ASSERT_TRUE(in_memory.ok());
          EXPECT_EQ(*got, *in_memory) << what;
        }
      }
    }
  }
  auto bad = (*reader)->aggregate(Aggregate::kHeadMean, 3, 0, {0, 13}, {0, 13});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("layer 3"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace attnscope::store
