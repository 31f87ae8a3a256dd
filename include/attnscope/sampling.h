// Choosing the next token from logits. Greedy (argmax) unless a temperature > 0 is
// given; then top-k, top-p and min-p filter the candidates (in that order, as
// llama.cpp's default chain does) before a seeded draw.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "attnscope/result.h"

namespace attnscope {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy
  int32_t top_k = 40;        // <= 0: no limit
  float top_p = 0.95f;       // 1: no limit
  float min_p = 0.05f;       // 0: no limit
  uint64_t seed = 0;

  bool greedy() const { return temperature <= 0.0f; }
  // An error names the parameter and its allowed range.
  Status validate() const;
  std::string describe() const;  // "greedy" or "temperature 0.8, top-k 40, ..."
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // The chosen token id; logits must be non-empty.
  int32_t sample(std::span<const float> logits);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // (logit, id)
};

// Index of the largest value (the first one on ties).
int32_t argmax(std::span<const float> values);

}  // namespace attnscope
