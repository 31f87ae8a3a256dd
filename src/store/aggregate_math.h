// The arithmetic of the attention aggregates (formulas: docs/aggregations.md), on
// plain row-major float matrices, separate from the store so that it can be tested on
// hand-made matrices. RunReader::aggregate() and the safetensors export both use these
// pieces, in the same order, so that their results are bit-identical.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/store.h"

namespace attnscope::store {

// Elementwise mean of equally-shaped matrices: sum in double, divide once at the end.
class MeanAccumulator {
 public:
  explicit MeanAccumulator(size_t n_values) : sum_(n_values, 0.0) {}
  void add(std::span<const float> m);  // m.size() == n_values
  int32_t count() const { return count_; }
  std::vector<float> mean() const;     // sum / count (zeros when nothing was added)

 private:
  std::vector<double> sum_;
  int32_t count_ = 0;
};

// Elementwise maximum of equally-shaped matrices.
class MaxAccumulator {
 public:
  explicit MaxAccumulator(size_t n_values) : max_(n_values, 0.0f) {}
  void add(std::span<const float> m);
  const std::vector<float>& max() const { return max_; }  // zeros when nothing was added

 private:
  std::vector<float> max_;
  bool first_ = true;
};

// Attention rollout (Abnar & Zuidema 2020), one layer at a time:
//   Â_l = rownorm(A_l + I),  R_0 = Â_0,  R_l = Â_l · R_{l-1}
// with A_l a layer's (causal) head-mean attention. R_l is lower-triangular, so R_l[j, k]
// only involves rows j' in [k, j]: to know R[q, K] for the query rows q < q_end and keys
// K = [k0, k1) it is enough to carry R on the rows J = [k0, q_end) and the columns K.
class RolloutChain {
 public:
  // rows J and keys K with J.begin <= K.begin and K.end <= J.end.
  RolloutChain(Range rows, Range keys);

  // Applies one layer. `a`: (a_rows.size(), rows.end) row-major, the layer's head-mean
  // attention of query rows a_rows (a sub-range of J) over keys 0 .. rows.end-1 (the
  // full rows are needed for the row sums of A + I). Only rows a_rows of R are updated:
  // every step but the last must cover all of J.
  void step(std::span<const float> a, Range a_rows);
  int32_t n_steps() const { return n_steps_; }

  Range rows() const { return rows_; }
  Range keys() const { return keys_; }
  // R on rows J and columns K: (rows.size(), keys.size()) row-major.
  const std::vector<float>& matrix() const { return r_; }
  // R[q, k] for any q, k (zero outside J x K, which causality makes exact when
  // q.end <= rows.end and k.begin >= keys.begin): (q.size(), k.size()) row-major.
  std::vector<float> extract(Range q, Range k) const;

 private:
  Range rows_, keys_;
  std::vector<float> r_;  // (rows.size(), keys.size())
  int32_t n_steps_ = 0;
};

// Everything the aggregates need from a run: its shape and one head's probabilities.
struct HeadSource {
  std::string name;  // for error messages: the run directory
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_rows = 0;  // query rows (and keys) available: 0 .. n_rows-1
  // (q.size(), k.size()) row-major, zeros above the diagonal.
  std::function<Result<std::vector<float>>(int32_t layer, int32_t head, Range q, Range k)> read;
};

// Mean over `heads` of one layer (all heads when empty).
Result<std::vector<float>> head_mean(const HeadSource& src, int32_t layer, std::span<const int32_t> heads,
                                     Range q, Range k);
// RunReader::aggregate on any HeadSource. Checks the layer, head and ranges.
Result<std::vector<float>> compute_aggregate(const HeadSource& src, Aggregate kind, int32_t layer,
                                             int32_t head, Range q, Range k);

}  // namespace attnscope::store
