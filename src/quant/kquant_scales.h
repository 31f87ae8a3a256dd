// Packed sub-block scales of the k-quants, shared by the dequantizers and the int8
// dot products (layouts in blocks.h).
#pragma once

#include <cstdint>

namespace attnscope::quant::detail {

// 6-bit scale and min of sub-block s (0..7) of Q4_K / Q5_K ("get_scale_min_k4").
inline void scale_min_k4(const uint8_t* scales, int s, int& scale, int& min) {
  if (s < 4) {
    scale = scales[s] & 63;
    min = scales[s + 4] & 63;
  } else {
    scale = (scales[s + 4] & 0x0F) | ((scales[s - 4] >> 6) << 4);
    min = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4);
  }
}

// Signed 6-bit scale of sub-block s (0..15) of Q3_K, already minus 32.
inline int scale_q3_k(const uint8_t* scales, int s) {
  const int lo = s < 8 ? (scales[s] & 0x0F) : (scales[s - 8] >> 4);
  const int hi = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

// 6-bit scale of sub-block s (0..7) of IQ4_XS, already minus 32.
inline int scale_iq4_xs(uint16_t scales_h, const uint8_t* scales_l, int s) {
  const int lo = (scales_l[s / 2] >> (4 * (s % 2))) & 0x0F;
  const int hi = (scales_h >> (2 * s)) & 3;
  return (lo | (hi << 4)) - 32;
}

}  // namespace attnscope::quant::detail
