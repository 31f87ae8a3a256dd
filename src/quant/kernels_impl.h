// Internals of the quant layer: the f32 accumulator that every dot product shares,
// block-walking templates, and the per-type entry points that kernels.cpp tabulates.
//
// Accumulation order (the one rule every dot path follows)
// --------------------------------------------------------
// sum_i w[i] * x[i] is computed in float: each product is rounded to float, element i
// is added into lane (i mod 8) of eight float accumulators, and the lanes are added
// in a fixed tree at the end. Why float and this order:
//   * it is deterministic, and identical whether a row is walked block by block
//     (Kernels::dot) or dequantized whole first (matmul_rows with many tokens), so
//     a token's output never depends on how many tokens were batched with it;
//   * eight independent lanes let the compiler vectorise without reassociating;
//   * the rounding error is at most about (n/8 + 3) * 2^-24 * sum|w*x| (typically
//     far less), well below the quantization error of any of these formats. A double
//     accumulator would be closer to the exact sum but halves the vector width of the
//     hot f32 loop in matmul_rows.
// These sums rely on the compiler not contracting a*b + c into an FMA: CMakeLists.txt
// passes -ffp-contract=off (GCC contracts in C++ by default, -std=c++20 or not). The
// dequantizers are immune: in every format here the products (f16 scale x small
// integer) are exact in float.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "quant/blocks.h"

namespace attnscope::quant::detail {

// ---- half / bfloat16 -> float (exact; inline so the 16-bit kernels can use them) ----
//   binary16: s eeeee mmmmmmmmmm (bias 15);  binary32: s e*8 m*23 (bias 127)
inline float f16_to_f32_inline(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp - 1 < 30) {  // normal (exp 1..30): rebias
    bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  } else if (exp == 0x1F) {  // inf / nan: keep the payload (a NaN stays a NaN)
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (mant == 0) {  // +-0
    bits = sign;
  } else {  // subnormal mant * 2^-24: normalise into a binary32 normal
    // Shift the leading 1 up to bit 10 (the implicit bit); each shift lowers the exponent.
    const int shift = std::countl_zero(mant) - 21;
    mant = (mant << shift) & 0x3FFu;
    bits = sign | (static_cast<uint32_t>(127 - 15 + 1 - shift) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

inline float bf16_to_f32_inline(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// Round to nearest even on the 16 dropped bits; a carry correctly bumps the exponent (up
// to infinity beyond bf16's range). A NaN stays a NaN, made quiet.
inline uint16_t f32_to_bf16_inline(float f) {
  const uint32_t a = std::bit_cast<uint32_t>(f);
  if ((a & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((a >> 16) | 0x40u);
  return static_cast<uint16_t>((a + 0x7FFFu + ((a >> 16) & 1u)) >> 16);
}

class Acc8 {
 public:
  // Adds sum_i w[i] * x[i]. Calls may be chained; every call but the last must have
  // n % 8 == 0 so that element i of the whole row always lands in lane i mod 8.
  void add(const float* w, const float* x, int64_t n) {
    float a[8];
    for (int k = 0; k < 8; ++k) a[k] = lane_[k];
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (int k = 0; k < 8; ++k) a[k] += w[i + k] * x[i + k];
    }
    for (int k = 0; k < 8 && i + k < n; ++k) a[k] += w[i + k] * x[i + k];  // tail < 8
    for (int k = 0; k < 8; ++k) lane_[k] = a[k];
  }

  float sum() const {
    return ((lane_[0] + lane_[1]) + (lane_[2] + lane_[3])) +
           ((lane_[4] + lane_[5]) + (lane_[6] + lane_[7]));
  }

 private:
  float lane_[8] = {};
};

// Plain f32 dot product of two float arrays with the accumulation order above.
inline float dot_dense(const float* w, const float* x, int64_t n) {
  Acc8 acc;
  acc.add(w, x, n);
  return acc.sum();
}

// Reads block b of a row without assuming any alignment of `row`.
template <typename Block>
inline Block load_block(const void* row, int64_t b) {
  Block block;
  std::memcpy(&block, static_cast<const uint8_t*>(row) + b * static_cast<int64_t>(sizeof(Block)),
              sizeof(Block));
  return block;
}

// Dequantizes the n / kN whole blocks of a row (a trailing partial block is ignored:
// callers validate sizes with ggml_row_bytes first).
template <typename Block, int kN, void (*DequantBlock)(const Block&, float*)>
void dequantize_blocks(const void* src, float* dst, int64_t n) {
  const int64_t n_blocks = n / kN;
  for (int64_t b = 0; b < n_blocks; ++b) {
    DequantBlock(load_block<Block>(src, b), dst + b * kN);
  }
}

// dot(row, x) one block at a time through a stack buffer (no heap allocation).
template <typename Block, int kN, void (*DequantBlock)(const Block&, float*)>
float dot_blocks(const void* row, const float* x, int64_t n) {
  static_assert(kN % 8 == 0);
  const int64_t n_blocks = n / kN;
  float w[kN];  // (kN) one dequantized block
  Acc8 acc;
  for (int64_t b = 0; b < n_blocks; ++b) {
    DequantBlock(load_block<Block>(row, b), w);
    acc.add(w, x + b * kN, kN);
  }
  return acc.sum();
}

// Per-type entry points (Kernels::dequantize / Kernels::dot).
#define ATTN_QUANT_DECLARE(name)                                  \
  void dequantize_##name(const void* src, float* dst, int64_t n); \
  float dot_##name(const void* row, const float* x, int64_t n);

ATTN_QUANT_DECLARE(f32)
ATTN_QUANT_DECLARE(f16)
ATTN_QUANT_DECLARE(bf16)
ATTN_QUANT_DECLARE(q8_0)
ATTN_QUANT_DECLARE(q4_0)
ATTN_QUANT_DECLARE(q4_1)
ATTN_QUANT_DECLARE(q5_0)
ATTN_QUANT_DECLARE(q5_1)
ATTN_QUANT_DECLARE(q2_k)
ATTN_QUANT_DECLARE(q3_k)
ATTN_QUANT_DECLARE(q4_k)
ATTN_QUANT_DECLARE(q5_k)
ATTN_QUANT_DECLARE(q6_k)
ATTN_QUANT_DECLARE(iq4_nl)
ATTN_QUANT_DECLARE(iq4_xs)

#undef ATTN_QUANT_DECLARE

}  // namespace attnscope::quant::detail
