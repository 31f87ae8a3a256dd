// f16 / bf16 conversions: known values, exhaustive round trips, ties to even.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "attnscope/quant.h"

namespace attnscope::quant {
namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

TEST(Fp16, KnownValues) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x3555), 0x1.554p-2f);               // 0.333251953125
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(bits(f16_to_f32(0x0000)), 0x00000000u);
  EXPECT_EQ(bits(f16_to_f32(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7C01)));  // signalling payload stays a NaN
  EXPECT_TRUE(std::isnan(f16_to_f32(0xFFFF)));
}

TEST(Fp16, AllSubnormalsAreExact) {
  for (uint16_t m = 1; m < 0x400; ++m) {
    ASSERT_EQ(f16_to_f32(m), std::ldexp(static_cast<float>(m), -24)) << m;
    ASSERT_EQ(f16_to_f32(static_cast<uint16_t>(0x8000 | m)),
              -std::ldexp(static_cast<float>(m), -24));
  }
}

TEST(Fp16, RoundTripsEveryNonNanHalf) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const auto h16 = static_cast<uint16_t>(h);
    const float f = f16_to_f32(h16);
    if (std::isnan(f)) {
      ASSERT_TRUE((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0) << h;
      ASSERT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << h;  // NaN stays NaN
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h16) << "half 0x" << std::hex << h;
  }
}

TEST(Fp16, RoundsToNearestTiesToEven) {
  // Between 1 (0x3C00) and the next half 1 + 2^-10 (0x3C01): ties go to the even one.
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3C01);
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 0.0f)), 0x3C00);
  EXPECT_EQ(f32_to_f16(-(1.0f + std::ldexp(1.0f, -11))), 0xBC00);
  // Carry out of the mantissa into the exponent: 2 - 2^-12 rounds up to 2.
  EXPECT_EQ(f32_to_f16(2.0f - std::ldexp(1.0f, -12)), 0x4000);
  // Overflow: 65520 is the tie between 65504 and 65536 (odd mantissa) -> inf.
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16(1e9f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-1e9f), 0xFC00);
  // Subnormal ties: 2^-25 -> 0 (even), 3 * 2^-25 -> 2 * 2^-24, 5 * 2^-25 -> 2 * 2^-24.
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(3 * std::ldexp(1.0f, -25)), 0x0002);
  EXPECT_EQ(f32_to_f16(5 * std::ldexp(1.0f, -25)), 0x0002);
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -26)), 0x8000);
  // Largest subnormal + half an ulp rounds (tie, odd) up into the smallest normal.
  EXPECT_EQ(f32_to_f16(std::ldexp(2047.0f, -25)), 0x0400);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Fp16, MatchesReferenceRoundingOnASweep) {
  // Reference: the nearest half by exhaustive comparison over neighbours, ties to even.
  uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    // Magnitudes across the whole half range, from below subnormals to overflow.
    const float f = std::bit_cast<float>((state & 0x80000000u) |
                                         (0x32000000u + (state % (0x47800000u - 0x32000000u))));
    const uint16_t h = f32_to_f16(f);
    ASSERT_EQ(std::signbit(f16_to_f32(h)), std::signbit(f)) << f;
    const auto mag = static_cast<uint16_t>(h & 0x7FFF);
    const double av = std::fabs(static_cast<double>(f));
    if (mag == 0x7C00) {
      ASSERT_GE(av, 65520.0) << f;
      continue;
    }
    const double got = f16_to_f32(mag);
    const double up = mag < 0x7BFF ? f16_to_f32(static_cast<uint16_t>(mag + 1)) : 65536.0;
    const double down = mag > 0 ? f16_to_f32(static_cast<uint16_t>(mag - 1)) : 0.0;
    const double err = std::fabs(av - got);
    ASSERT_LE(err, std::fabs(av - up)) << f;
    ASSERT_LE(err, std::fabs(av - down)) << f;
    if (mag > 0 && (err == std::fabs(av - up) || err == std::fabs(av - down))) {
      ASSERT_EQ(mag & 1, 0) << "tie not rounded to even: " << f;
    }
  }
}

TEST(Bf16, KnownValues) {
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_f32(0x0000), 0.0f);
  EXPECT_EQ(bits(bf16_to_f32(0x8000)), 0x80000000u);
  EXPECT_EQ(bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_f32(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7FC0)));
  EXPECT_EQ(bits(bf16_to_f32(0x0001)), 0x00010000u);  // f32 subnormal, exact
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    ASSERT_EQ(bits(bf16_to_f32(static_cast<uint16_t>(h))), h << 16);
  }
}

}  // namespace
}  // namespace attnscope::quant
