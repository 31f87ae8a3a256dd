// The k-quant super-block formats Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (layouts in blocks.h).
//
// Bit-exactness with ggml: each sub-block's scale is first turned into a float
// (d * scale, and dmin * min), then every element is float(q) * that scale, minus the
// float min term where the format has one. Same operations, same order, no fusing.
#include "attnscope/quant.h"
#include "quant/kernels_impl.h"
#include "quant/kquant_scales.h"

namespace attnscope::quant::detail {
namespace {

// ---- per-format block dequantizers -------------------------------------------------
// The loops walk sub-blocks in element order; inside one, every element reads the
// same byte offset pattern with fixed shifts, which keeps the inner loops simple
// enough for the compiler to vectorise.

void block_q2_k(const BlockQ2_K& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  const float dmin = f16_to_f32_inline(b.dmin);
  for (int s = 0; s < 16; ++s) {  // sub-block s = elements 16s .. 16s + 15
    const float dl = d * static_cast<float>(b.scales[s] & 0x0F);
    const float ml = dmin * static_cast<float>(b.scales[s] >> 4);
    // Element 128h + 32j + 16u + l sits in bits 2j+1:2j of qs[32h + 16u + l].
    const int h = s / 8, j = (s % 8) / 2, u = s % 2;
    const uint8_t* q = b.qs + 32 * h + 16 * u;
    for (int l = 0; l < 16; ++l) {
      y[16 * s + l] = dl * static_cast<float>((q[l] >> (2 * j)) & 3) - ml;
    }
  }
}

void block_q3_k(const BlockQ3_K& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  for (int s = 0; s < 16; ++s) {
    const float dl = d * static_cast<float>(scale_q3_k(b.scales, s));
    // Low 2 bits as in Q2_K; the 3rd bit is bit 4h + j of hmask[16u + l].
    const int h = s / 8, j = (s % 8) / 2, u = s % 2;
    const uint8_t* q = b.qs + 32 * h + 16 * u;
    const uint8_t* hm = b.hmask + 16 * u;
    const int bit = 4 * h + j;
    for (int l = 0; l < 16; ++l) {
      const int low2 = (q[l] >> (2 * j)) & 3;
      const int minus4 = ((hm[l] >> bit) & 1) ? 0 : 4;
      y[16 * s + l] = dl * static_cast<float>(low2 - minus4);
    }
  }
}

void block_q4_k(const BlockQ4_K& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  const float dmin = f16_to_f32_inline(b.dmin);
  for (int s = 0; s < 8; ++s) {  // sub-block s = elements 32s .. 32s + 31
    int scale = 0, min = 0;
    scale_min_k4(b.scales, s, scale, min);
    const float dl = d * static_cast<float>(scale);
    const float ml = dmin * static_cast<float>(min);
    // Sub-blocks 2c and 2c + 1 share qs[32c .. 32c + 31]: low and high nibbles.
    const uint8_t* q = b.qs + 32 * (s / 2);
    const int shift = 4 * (s % 2);
    for (int l = 0; l < 32; ++l) {
      y[32 * s + l] = dl * static_cast<float>((q[l] >> shift) & 0x0F) - ml;
    }
  }
}

void block_q5_k(const BlockQ5_K& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  const float dmin = f16_to_f32_inline(b.dmin);
  for (int s = 0; s < 8; ++s) {
    int scale = 0, min = 0;
    scale_min_k4(b.scales, s, scale, min);
    const float dl = d * static_cast<float>(scale);
    const float ml = dmin * static_cast<float>(min);
    // Low 4 bits as in Q4_K; bit 4 is bit s of qh[l].
    const uint8_t* q = b.qs + 32 * (s / 2);
    const int shift = 4 * (s % 2);
    for (int l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 0x0F) | (((b.qh[l] >> s) & 1) << 4);
      y[32 * s + l] = dl * static_cast<float>(v) - ml;
    }
  }
}

void block_q6_k(const BlockQ6_K& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  for (int s = 0; s < 16; ++s) {  // sub-block s = elements 16s .. 16s + 15
    const float dl = d * static_cast<float>(b.scales[s]);
    // Element 128h + 32p + 16u + l (p: quarter 0..3): low 4 bits in the (p < 2 ? low
    // : high) nibble of ql[64h + 32(p % 2) + 16u + l], high 2 bits in bits 2p+1:2p of
    // qh[32h + 16u + l].
    const int h = s / 8, p = (s % 8) / 2, u = s % 2;
    const uint8_t* ql = b.ql + 64 * h + 32 * (p % 2) + 16 * u;
    const uint8_t* qh = b.qh + 32 * h + 16 * u;
    const int lshift = p < 2 ? 0 : 4;
    for (int l = 0; l < 16; ++l) {
      const int v = ((ql[l] >> lshift) & 0x0F) | (((qh[l] >> (2 * p)) & 3) << 4);
      y[16 * s + l] = dl * static_cast<float>(v - 32);
    }
  }
}

}  // namespace

#define ATTN_QUANT_DEFINE(name, Block)                             \
  void dequantize_##name(const void* src, float* dst, int64_t n) { \
    dequantize_blocks<Block, kQK_K, block_##name>(src, dst, n);    \
  }                                                                \
  float dot_##name(const void* row, const float* x, int64_t n) {   \
    return dot_blocks<Block, kQK_K, block_##name>(row, x, n);      \
  }

ATTN_QUANT_DEFINE(q2_k, BlockQ2_K)
ATTN_QUANT_DEFINE(q3_k, BlockQ3_K)
ATTN_QUANT_DEFINE(q4_k, BlockQ4_K)
ATTN_QUANT_DEFINE(q5_k, BlockQ5_K)
ATTN_QUANT_DEFINE(q6_k, BlockQ6_K)

#undef ATTN_QUANT_DEFINE

}  // namespace attnscope::quant::detail
