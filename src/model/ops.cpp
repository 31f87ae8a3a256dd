#include "model/ops.h"

#include <cmath>

#include "attnscope/quant.h"

namespace attnscope::model {

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  quant::rms_norm(x, w, n, eps, y);
}

void rope_angles(int32_t n_rot, int32_t pos, const ModelConfig& c, const float* freq_factors, float* cos_out,
                 float* sin_out) {
  for (int32_t i = 0; i < n_rot / 2; ++i) {
    // theta_i = pos * scale * base^(-2i/n_rot) / factor_i, in double so that long
    // positions do not lose the angle's low bits.
    double theta = static_cast<double>(pos) * c.rope_freq_scale *
                   std::pow(static_cast<double>(c.rope_theta), -2.0 * i / n_rot);
    if (freq_factors != nullptr) theta /= freq_factors[i];
    cos_out[i] = static_cast<float>(std::cos(theta));
    sin_out[i] = static_cast<float>(std::sin(theta));
  }
}

void rope_apply(float* x, int32_t n_heads, int32_t head_dim, int32_t n_rot, RopeLayout layout, const float* cos_t,
                const float* sin_t) {
  // kNorm pairs (2i, 2i+1); kNeox pairs (i, i + n_rot/2).
  for (int32_t h = 0; h < n_heads; ++h) {
    quant::rope_rotate(x + static_cast<int64_t>(h) * head_dim, n_rot, layout == RopeLayout::kNeox, cos_t, sin_t);
  }
}

}  // namespace attnscope::model
