#include "model/ops.h"

#include <cmath>

namespace attnscope::model {

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void rope(float* x, int32_t n_heads, int32_t head_dim, int32_t n_rot, int32_t pos,
          const ModelConfig& c, const float* freq_factors) {
  const int32_t half = n_rot / 2;
  for (int32_t i = 0; i < half; ++i) {
    // theta_i = pos * scale * base^(-2i/n_rot) / factor_i, in double so that long
    // positions do not lose the angle's low bits.
    double theta = static_cast<double>(pos) * c.rope_freq_scale *
                   std::pow(static_cast<double>(c.rope_theta), -2.0 * i / n_rot);
    if (freq_factors != nullptr) theta /= freq_factors[i];
    const float cos_t = static_cast<float>(std::cos(theta));
    const float sin_t = static_cast<float>(std::sin(theta));
    for (int32_t h = 0; h < n_heads; ++h) {
      float* head = x + static_cast<int64_t>(h) * head_dim;
      // kNorm pairs (2i, 2i+1); kNeox pairs (i, i + n_rot/2).
      const int32_t a = c.rope_layout == RopeLayout::kNorm ? 2 * i : i;
      const int32_t b = c.rope_layout == RopeLayout::kNorm ? 2 * i + 1 : i + half;
      const float x0 = head[a], x1 = head[b];
      head[a] = x0 * cos_t - x1 * sin_t;
      head[b] = x0 * sin_t + x1 * cos_t;
    }
  }
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);  // exp(-inf) = 0 for masked entries
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace attnscope::model
