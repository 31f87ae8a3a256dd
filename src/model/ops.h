// Element-wise operations of the LLaMA block (the matrix products and dense dot
// products are the quant layer's dispatched kernels).
#pragma once

#include <cstdint>

#include "attnscope/model.h"

namespace attnscope::model {

// y = x / sqrt(mean(x^2) + eps) * w over n elements (y may alias x).
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y);

// cos and sin of the n_rot/2 rotation angles at position `pos` (each (n_rot/2)); they
// depend on the position only, so a batch computes them once for all layers.
// freq_factors: (n_rot/2) divisors of each frequency, or nullptr.
void rope_angles(int32_t n_rot, int32_t pos, const ModelConfig& config, const float* freq_factors,
                 float* cos_out, float* sin_out);

// Rotates the first n_rot dims of each of n_heads heads (stride head_dim) of one token
// by the angles of rope_angles.
void rope_apply(float* x, int32_t n_heads, int32_t head_dim, int32_t n_rot, RopeLayout layout,
                const float* cos_t, const float* sin_t);




}  // namespace attnscope::model
