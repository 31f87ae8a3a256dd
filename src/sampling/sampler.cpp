#include "attnscope/sampling.h"

#include <algorithm>
#include <cmath>

namespace attnscope {

Status SamplingParams::validate() const {
  if (!std::isfinite(temperature) || temperature < 0.0f) {
    return make_error("invalid temperature {}: expected a number >= 0", temperature);
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return make_error("invalid top-p {}: expected a number in (0, 1]", top_p);
  }
  if (!(min_p >= 0.0f && min_p < 1.0f)) {
    return make_error("invalid min-p {}: expected a number in [0, 1)", min_p);
  }
  return ok_status();
}

std::string SamplingParams::describe() const {
  if (greedy()) return "greedy";
  return fmt::format("temperature {}, top-k {}, top-p {}, min-p {}, seed {}", temperature, top_k,
                     top_p, min_p, seed);
}

int32_t argmax(std::span<const float> values) {
  int32_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::sample(std::span<const float> logits) {
  if (params_.greedy()) return argmax(logits);

  candidates_.clear();
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isfinite(logits[i])) candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
  }
  if (candidates_.empty()) return argmax(logits);
  // Highest logit first; ties by lower id so that the order is deterministic.
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  size_t n = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    n = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(n),
                      candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  candidates_.resize(n);

  // Probabilities at temperature 1 drive top-p and min-p (llama.cpp's default chain
  // applies temperature last).
  std::vector<double> p(n);
  const double max = candidates_[0].first;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += p[i] = std::exp(candidates_[i].first - max);
  for (double& x : p) x /= sum;

  size_t keep = n;
  if (params_.top_p < 1.0f) {
    double cum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      cum += p[i];
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    const double threshold = params_.min_p * p[0];
    size_t i = 1;
    while (i < keep && p[i] >= threshold) ++i;
    keep = i;
  }

  std::vector<double> weights(keep);
  for (size_t i = 0; i < keep; ++i) {
    weights[i] = std::exp((candidates_[i].first - max) / params_.temperature);
  }
  std::discrete_distribution<size_t> dist(weights.begin(), weights.end());
  return candidates_[dist(rng_)].second;
}

}  // namespace attnscope
