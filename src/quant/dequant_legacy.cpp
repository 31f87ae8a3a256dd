// The legacy 32-element block formats: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (layouts in
// blocks.h). Each formula rounds exactly as ggml's dequantize_row_* does:
// float(q) * d, then + m for the "_1" types, as separate float operations.
#include <cstring>

#include "attnscope/quant.h"
#include "quant/kernels_impl.h"

namespace attnscope::quant::detail {
namespace {

constexpr int kHalf = kQK / 2;

inline uint32_t load_qh(const uint8_t (&qh)[4]) {
  uint32_t v;
  std::memcpy(&v, qh, sizeof(v));
  return v;  // little-endian host (checked in blocks.h)
}

// The loops below produce elements j and j + 16 together from byte qs[j]: its low
// nibble is element j, its high nibble element j + 16 (see blocks.h).

void block_q8_0(const BlockQ8_0& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

void block_q4_0(const BlockQ4_0& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  for (int j = 0; j < kHalf; ++j) {
    y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
    y[j + kHalf] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

void block_q4_1(const BlockQ4_1& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  const float m = f16_to_f32_inline(b.m);
  for (int j = 0; j < kHalf; ++j) {
    y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
    y[j + kHalf] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}

// Bit 4 of the quants: element j has it in bit j of qh.
void block_q5_0(const BlockQ5_0& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  const uint32_t qh = load_qh(b.qh);
  for (int j = 0; j < kHalf; ++j) {
    const int lo = (b.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1u) << 4);
    y[j] = static_cast<float>(lo - 16) * d;
    y[j + kHalf] = static_cast<float>(hi - 16) * d;
  }
}

void block_q5_1(const BlockQ5_1& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  const float m = f16_to_f32_inline(b.m);
  const uint32_t qh = load_qh(b.qh);
  for (int j = 0; j < kHalf; ++j) {
    const int lo = (b.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1u) << 4);
    y[j] = static_cast<float>(lo) * d + m;
    y[j + kHalf] = static_cast<float>(hi) * d + m;
  }
}

}  // namespace

#define ATTN_QUANT_DEFINE(name, Block)                             \
  void dequantize_##name(const void* src, float* dst, int64_t n) { \
    dequantize_blocks<Block, kQK, block_##name>(src, dst, n);      \
  }                                                                \
  float dot_##name(const void* row, const float* x, int64_t n) {   \
    return dot_blocks<Block, kQK, block_##name>(row, x, n);        \
  }

ATTN_QUANT_DEFINE(q8_0, BlockQ8_0)
ATTN_QUANT_DEFINE(q4_0, BlockQ4_0)
ATTN_QUANT_DEFINE(q4_1, BlockQ4_1)
ATTN_QUANT_DEFINE(q5_0, BlockQ5_0)
ATTN_QUANT_DEFINE(q5_1, BlockQ5_1)

#undef ATTN_QUANT_DEFINE

}  // namespace attnscope::quant::detail
