// IEEE 754 binary16 and bfloat16 <-> binary32, with integer arithmetic only so that
// results do not depend on the FPU's rounding mode or on F16C being present.
//
//   binary16:  s eeeee mmmmmmmmmm           bias 15
//   binary32:  s eeeeeeee mmmmmmmmmmmmmmmmmmmmmmm   bias 127
//   bfloat16:  the top 16 bits of a binary32
#include <bit>
#include <cstdint>

#include "attnscope/quant.h"
#include "quant/kernels_impl.h"

namespace attnscope::quant {

float f16_to_f32(uint16_t h) { return detail::f16_to_f32_inline(h); }

uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7FFFFFFFu;  // |f|

  if (a >= 0x7F800000u) {  // inf or nan
    if (a == 0x7F800000u) return sign | 0x7C00u;
    // NaN: keep the top payload bits and force the quiet bit so it cannot become inf.
    return static_cast<uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  }
  if (a >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to inf
  if (a < 0x38800000u) {                        // below 2^-14: half subnormal or zero
    if (a <= 0x33000000u) return sign;          // <= 2^-25 (a tie goes to even 0)
    // a = mant * 2^(exp - 150); in units of 2^-24 that is mant >> (126 - exp).
    const uint32_t exp = a >> 23;
    const uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14..24
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;  // may carry into the min normal
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias the exponent, keep 10 mantissa bits, round on the 13 dropped bits.
  // A carry out of the mantissa correctly bumps the exponent.
  uint32_t r = (((a >> 23) - (127 - 15)) << 10) | ((a >> 13) & 0x3FFu);
  const uint32_t rem = a & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

float bf16_to_f32(uint16_t h) { return detail::bf16_to_f32_inline(h); }

uint16_t f32_to_bf16(float f) { return detail::f32_to_bf16_inline(f); }

}  // namespace attnscope::quant
