// Head mean / max, layer mean and attention rollout (docs/aggregations.md).
#include "store/aggregate_math.h"

#include <algorithm>

namespace attnscope::store {

// ---- Accumulators ----

void MeanAccumulator::add(std::span<const float> m) {
  const size_t n = std::min(m.size(), sum_.size());
  for (size_t i = 0; i < n; ++i) sum_[i] += m[i];
  ++count_;
}

std::vector<float> MeanAccumulator::mean() const {
  std::vector<float> out(sum_.size(), 0.0f);
  if (count_ == 0) return out;
  for (size_t i = 0; i < sum_.size(); ++i) out[i] = static_cast<float>(sum_[i] / count_);
  return out;
}

void MaxAccumulator::add(std::span<const float> m) {
  const size_t n = std::min(m.size(), max_.size());
  if (first_) {
    std::copy_n(m.begin(), n, max_.begin());
    first_ = false;
    return;
  }
  for (size_t i = 0; i < n; ++i) max_[i] = std::max(max_[i], m[i]);
}

// ---- Rollout ----

RolloutChain::RolloutChain(Range rows, Range keys)
    : rows_(rows), keys_(keys),
      r_(static_cast<size_t>(std::max(rows.size(), 0)) * static_cast<size_t>(std::max(keys.size(), 0)), 0.0f) {}

void RolloutChain::step(std::span<const float> a, Range a_rows) {
  const int32_t width = rows_.end;  // a's row length: keys 0 .. rows.end-1
  const int32_t k0 = keys_.begin, k1 = keys_.end, nk = keys_.size();
  if (nk <= 0 || a_rows.size() <= 0) {
    ++n_steps_;
    return;
  }
  std::vector<double> acc(static_cast<size_t>(nk));
  // Descending rows: row j needs the previous R on rows j' <= j only, which are not yet
  // overwritten, so R is updated in place.
  for (int32_t j = a_rows.end - 1; j >= a_rows.begin; --j) {
    const float* arow = a.data() + static_cast<size_t>(j - a_rows.begin) * width;
    double s = 1.0;  // row sum of A + I
    for (int32_t c = 0; c < width; ++c) s += arow[c];
    float* rrow = r_.data() + static_cast<size_t>(j - rows_.begin) * nk;

    if (n_steps_ == 0) {  // R_0 = Â_0
      for (int32_t k = k0; k < k1; ++k) {
        const double v = static_cast<double>(arow[k]) + (k == j ? 1.0 : 0.0);
        rrow[k - k0] = static_cast<float>(v / s);
      }
      continue;
    }
    // (A + I)[j, :] · R: the identity contributes the old row j itself.
    for (int32_t k = 0; k < nk; ++k) acc[static_cast<size_t>(k)] = rrow[k];
    // R[j', k] = 0 for k > j' (causal), so only rows j' in [k0, j] contribute.
    for (int32_t jp = std::max(k0, rows_.begin); jp <= j; ++jp) {
      const float w = arow[jp];
      if (w == 0.0f) continue;
      const float* prev = r_.data() + static_cast<size_t>(jp - rows_.begin) * nk;
      const int32_t n = std::min(k1, jp + 1) - k0;
      for (int32_t k = 0; k < n; ++k) acc[static_cast<size_t>(k)] += static_cast<double>(w) * prev[k];
    }
    for (int32_t k = 0; k < nk; ++k) rrow[k] = static_cast<float>(acc[static_cast<size_t>(k)] / s);
  }
  ++n_steps_;
}

std::vector<float> RolloutChain::extract(Range q, Range k) const {
  std::vector<float> out(static_cast<size_t>(q.size()) * static_cast<size_t>(k.size()), 0.0f);
  const int32_t nk = keys_.size();
  for (int32_t i = std::max(q.begin, rows_.begin); i < std::min(q.end, rows_.end); ++i) {
    const float* rrow = r_.data() + static_cast<size_t>(i - rows_.begin) * nk;
    float* orow = out.data() + static_cast<size_t>(i - q.begin) * k.size();
    for (int32_t c = std::max(k.begin, keys_.begin); c < std::min(k.end, keys_.end); ++c) {
      orow[c - k.begin] = rrow[c - keys_.begin];
    }
  }
  return out;
}

// ---- Aggregates over a HeadSource ----

namespace {

Status check_range(const HeadSource& src, Aggregate kind, const char* what, Range r) {
  if (r.begin < 0 || r.end < r.begin || r.end > src.n_rows) {
    return make_error("{}: aggregate {}: {} range [{}, {}) is not within the stored positions [0, {})",
                      src.name, aggregate_name(kind), what, r.begin, r.end, src.n_rows);
  }
  return ok_status();
}

Result<std::vector<float>> head_max(const HeadSource& src, int32_t layer, Range q, Range k) {
  MaxAccumulator max(static_cast<size_t>(q.size()) * static_cast<size_t>(k.size()));
  for (int32_t h = 0; h < src.n_heads; ++h) {
    ATTN_ASSIGN_OR_RETURN(std::vector<float> m, src.read(layer, h, q, k));
    max.add(m);
  }
  return max.max();
}

Result<std::vector<float>> layer_mean(const HeadSource& src, Range q, Range k) {
  MeanAccumulator mean(static_cast<size_t>(q.size()) * static_cast<size_t>(k.size()));
  for (int32_t l = 0; l < src.n_layers; ++l) {
    ATTN_ASSIGN_OR_RETURN(std::vector<float> m, head_mean(src, l, {}, q, k));
    mean.add(m);
  }
  return mean.mean();
}

Result<std::vector<float>> rollout(const HeadSource& src, int32_t layer, Range q, Range k) {
  // Columns at or after q.end are above the diagonal of every query row: zero.
  const Range keys{k.begin, std::min(k.end, q.end)};
  if (keys.size() <= 0) return std::vector<float>(static_cast<size_t>(q.size()) * k.size(), 0.0f);
  const Range rows{k.begin, q.end};
  const Range all_keys{0, rows.end};
  RolloutChain chain(rows, keys);
  for (int32_t l = 0; l < layer; ++l) {
    ATTN_ASSIGN_OR_RETURN(std::vector<float> a, head_mean(src, l, {}, rows, all_keys));
    chain.step(a, rows);
  }
  const Range last{std::max(q.begin, rows.begin), rows.end};  // query rows below k.begin are zero
  ATTN_ASSIGN_OR_RETURN(std::vector<float> a, head_mean(src, layer, {}, last, all_keys));
  chain.step(a, last);
  return chain.extract(q, k);
}

}  // namespace

Result<std::vector<float>> head_mean(const HeadSource& src, int32_t layer, std::span<const int32_t> heads,
                                     Range q, Range k) {
  MeanAccumulator mean(static_cast<size_t>(q.size()) * static_cast<size_t>(k.size()));
  const int32_t n = heads.empty() ? src.n_heads : static_cast<int32_t>(heads.size());
  for (int32_t i = 0; i < n; ++i) {
    ATTN_ASSIGN_OR_RETURN(std::vector<float> m, src.read(layer, heads.empty() ? i : heads[i], q, k));
    mean.add(m);
  }
  return mean.mean();
}

Result<std::vector<float>> compute_aggregate(const HeadSource& src, Aggregate kind, int32_t layer,
                                             int32_t head, Range q, Range k) {
  ATTN_RETURN_IF_ERROR(check_range(src, kind, "query", q));
  ATTN_RETURN_IF_ERROR(check_range(src, kind, "key", k));
  if (kind != Aggregate::kLayerMean && (layer < 0 || layer >= src.n_layers)) {
    return make_error("{}: aggregate {}: layer {} is out of range: the run has layers 0-{}", src.name,
                      aggregate_name(kind), layer, src.n_layers - 1);
  }
  if (kind == Aggregate::kNone && (head < 0 || head >= src.n_heads)) {
    return make_error("{}: aggregate {}: head {} is out of range: the run has heads 0-{}", src.name,
                      aggregate_name(kind), head, src.n_heads - 1);
  }
  if (q.size() == 0 || k.size() == 0) return std::vector<float>();
  switch (kind) {
    case Aggregate::kNone: return src.read(layer, head, q, k);
    case Aggregate::kHeadMean: return head_mean(src, layer, {}, q, k);
    case Aggregate::kHeadMax: return head_max(src, layer, q, k);
    case Aggregate::kLayerMean: return layer_mean(src, q, k);
    case Aggregate::kRollout: return rollout(src, layer, q, k);
  }
  return make_error("aggregate: unknown kind {}", static_cast<int>(kind));
}

}  // namespace attnscope::store
