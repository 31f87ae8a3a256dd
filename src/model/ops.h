// Scalar reference operations of the LLaMA block. The performance work replaces
// their bodies with SIMD versions held to these.
#pragma once

#include <cstdint>

#include "attnscope/model.h"

namespace attnscope::model {

// y = x / sqrt(mean(x^2) + eps) * w over n elements (y may alias x).
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y);

// Rotates the first n_rot dims of each of n_heads heads (stride head_dim) of one token
// at position `pos`. freq_factors: (n_rot/2) divisors of each frequency, or nullptr.
void rope(float* x, int32_t n_heads, int32_t head_dim, int32_t n_rot, int32_t pos,
          const ModelConfig& config, const float* freq_factors);

// gate[i] = silu(gate[i]) * up[i]
void swiglu(float* gate, const float* up, int64_t n);

// Numerically stable softmax over x[0..n) in place.
void softmax(float* x, int64_t n);

float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace attnscope::model
