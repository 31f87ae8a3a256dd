// The non-linear 4-bit formats IQ4_NL (32-element blocks) and IQ4_XS (256-element
// super-blocks with 6-bit sub-block scales); layouts and code book in blocks.h.
// As in ggml: y = d * float(code) for IQ4_NL, y = (d * float(scale - 32)) * float(code)
// for IQ4_XS.
#include "attnscope/quant.h"
#include "quant/kernels_impl.h"
#include "quant/kquant_scales.h"

namespace attnscope::quant::detail {
namespace {

// Dequantizes 32 elements whose 4-bit codes are packed as Q4_0 nibbles in qs[0..15].
inline void codes32(const uint8_t* qs, float scale, float* y) {
  for (int j = 0; j < 16; ++j) {
    y[j] = scale * static_cast<float>(kIq4nlValues[qs[j] & 0x0F]);
    y[j + 16] = scale * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
  }
}

void block_iq4_nl(const BlockIQ4_NL& b, float* y) { codes32(b.qs, f16_to_f32_inline(b.d), y); }

void block_iq4_xs(const BlockIQ4_XS& b, float* y) {
  const float d = f16_to_f32_inline(b.d);
  for (int s = 0; s < 8; ++s) {  // sub-blocks of 32
    const float dl = d * static_cast<float>(scale_iq4_xs(b.scales_h, b.scales_l, s));
    codes32(b.qs + 16 * s, dl, y + 32 * s);
  }
}

}  // namespace

void dequantize_iq4_nl(const void* src, float* dst, int64_t n) {
  dequantize_blocks<BlockIQ4_NL, kQK, block_iq4_nl>(src, dst, n);
}
float dot_iq4_nl(const void* row, const float* x, int64_t n) {
  return dot_blocks<BlockIQ4_NL, kQK, block_iq4_nl>(row, x, n);
}

void dequantize_iq4_xs(const void* src, float* dst, int64_t n) {
  dequantize_blocks<BlockIQ4_XS, kQK_K, block_iq4_xs>(src, dst, n);
}
float dot_iq4_xs(const void* row, const float* x, int64_t n) {
  return dot_blocks<BlockIQ4_XS, kQK_K, block_iq4_xs>(row, x, n);
}

}  // namespace attnscope::quant::detail
