// F32, F16 and BF16 rows: "dequantization" is an exact widening to float.
// The dot products convert a chunk at a time into a stack buffer and share the
// accumulation order of kernels_impl.h.
#include <algorithm>
#include <cstring>

#include "attnscope/quant.h"
#include "quant/kernels_impl.h"

namespace attnscope::quant::detail {
namespace {

constexpr int64_t kChunk = 256;  // elements converted per step (a multiple of 8)

// Reads element i of a row of 16-bit values without assuming alignment.
inline uint16_t load_u16(const void* row, int64_t i) {
  uint16_t v;
  std::memcpy(&v, static_cast<const uint8_t*>(row) + 2 * i, sizeof(v));
  return v;
}

template <float (*Convert)(uint16_t)>
void dequantize_16bit(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = Convert(load_u16(src, i));
}

template <float (*Convert)(uint16_t)>
float dot_16bit(const void* row, const float* x, int64_t n) {
  float w[kChunk];  // (kChunk) converted weights
  Acc8 acc;
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, n - i0);
    for (int64_t i = 0; i < len; ++i) w[i] = Convert(load_u16(row, i0 + i));
    acc.add(w, x + i0, len);
  }
  return acc.sum();
}

}  // namespace

void dequantize_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

float dot_f32(const void* row, const float* x, int64_t n) {
  float w[kChunk];  // (kChunk) copied weights (row may be unaligned)
  Acc8 acc;
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, n - i0);
    std::memcpy(w, static_cast<const uint8_t*>(row) + 4 * i0, static_cast<size_t>(len) * 4);
    acc.add(w, x + i0, len);
  }
  return acc.sum();
}

void dequantize_f16(const void* src, float* dst, int64_t n) {
  dequantize_16bit<f16_to_f32_inline>(src, dst, n);
}
float dot_f16(const void* row, const float* x, int64_t n) {
  return dot_16bit<f16_to_f32_inline>(row, x, n);
}

void dequantize_bf16(const void* src, float* dst, int64_t n) {
  dequantize_16bit<bf16_to_f32_inline>(src, dst, n);
}
float dot_bf16(const void* row, const float* x, int64_t n) {
  return dot_16bit<bf16_to_f32_inline>(row, x, n);
}

}  // namespace attnscope::quant::detail
