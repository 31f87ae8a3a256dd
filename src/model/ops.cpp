#include "model/ops.h"

#include <cmath>

namespace attnscope::model {

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
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
  const int32_t half = n_rot / 2;
  for (int32_t h = 0; h < n_heads; ++h) {
    float* head = x + static_cast<int64_t>(h) * head_dim;
    for (int32_t i = 0; i < half; ++i) {
      // kNorm pairs (2i, 2i+1); kNeox pairs (i, i + n_rot/2).
      const int32_t a = layout == RopeLayout::kNorm ? 2 * i : i;
      const int32_t b = layout == RopeLayout::kNorm ? 2 * i + 1 : i + half;
      const float x0 = head[a], x1 = head[b];
      head[a] = x0 * cos_t[i] - x1 * sin_t[i];
      head[b] = x0 * sin_t[i] + x1 * cos_t[i];
    }
  }
}

}  // namespace attnscope::model
