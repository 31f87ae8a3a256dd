// Kernels::dot and matmul_rows against a plain double-precision reference built on
// Kernels::dequantize, on random rows of every supported type; the kernel table;
// block sizes; and a few hand-built blocks with known values.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/quant.h"
#include "quant/blocks.h"
#include "support/quant_rows.h"

namespace attnscope::quant {
namespace {

using namespace testing;

TEST(Kernels, TableCoversTheSupportedTypes) {
  for (GgmlType t : kSupported) {
    const Kernels* k = kernels(id(t));
    ASSERT_NE(k, nullptr) << name(t);
    EXPECT_EQ(k->type, t);
    EXPECT_NE(k->dequantize, nullptr);
    EXPECT_NE(k->dot, nullptr);
  }
  for (uint32_t unsupported : {9u,  15u, 16u, 17u, 18u, 19u, 21u, 22u, 24u,  26u,        28u,
                               29u, 34u, 35u, 39u, 40u, 4u,  5u,  31u, 999u, 0xFFFFFFFFu}) {
    EXPECT_EQ(kernels(unsupported), nullptr) << unsupported;
  }
}

TEST(Blocks, SizesMatchTheTypeTable) {
  const auto check = [](GgmlType t, size_t size, uint32_t block_size) {
    const GgmlTypeInfo* info = ggml_type_info(id(t));
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->type_size, size) << info->name;
    EXPECT_EQ(info->block_size, block_size) << info->name;
  };
  check(GgmlType::Q8_0, sizeof(BlockQ8_0), kQK);
  check(GgmlType::Q4_0, sizeof(BlockQ4_0), kQK);
  check(GgmlType::Q4_1, sizeof(BlockQ4_1), kQK);
  check(GgmlType::Q5_0, sizeof(BlockQ5_0), kQK);
  check(GgmlType::Q5_1, sizeof(BlockQ5_1), kQK);
  check(GgmlType::Q2_K, sizeof(BlockQ2_K), kQK_K);
  check(GgmlType::Q3_K, sizeof(BlockQ3_K), kQK_K);
  check(GgmlType::Q4_K, sizeof(BlockQ4_K), kQK_K);
  check(GgmlType::Q5_K, sizeof(BlockQ5_K), kQK_K);
  check(GgmlType::Q6_K, sizeof(BlockQ6_K), kQK_K);
  check(GgmlType::Q8_K, sizeof(BlockQ8_K), kQK_K);
  check(GgmlType::IQ4_NL, sizeof(BlockIQ4_NL), kQK);
  check(GgmlType::IQ4_XS, sizeof(BlockIQ4_XS), kQK_K);
}

class PerType : public ::testing::TestWithParam<GgmlType> {};

TEST_P(PerType, DotMatchesDequantizedReference) {
  const GgmlType t = GetParam();
  const Kernels* k = kernels(id(t));
  ASSERT_NE(k, nullptr);
  std::mt19937 rng(1234 + id(t));
  for (int64_t n : {256, 512, 4096}) {
    const int64_t n_rows = 8;
    const auto rows = random_rows(t, n_rows, n, rng);
    const uint64_t row_bytes = rows.size() / n_rows;
    const auto x = random_floats(n, rng);
    std::vector<float> w(static_cast<size_t>(n));
    for (int64_t r = 0; r < n_rows; ++r) {
      const uint8_t* row = rows.data() + r * row_bytes;
      k->dequantize(row, w.data(), n);
      double exact = 0, magnitude = 0;
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(std::isfinite(w[i])) << name(t) << " element " << i;
        exact += static_cast<double>(w[i]) * x[i];
        magnitude += std::fabs(static_cast<double>(w[i]) * x[i]);
      }
      ASSERT_GT(magnitude, 0) << name(t);
      const float got = k->dot(row, x.data(), n);
      EXPECT_NEAR(got, exact, 1e-5 * magnitude) << name(t) << " n=" << n << " row " << r;
    }
  }
}

TEST_P(PerType, DotNeedsNoAlignment) {
  const GgmlType t = GetParam();
  const Kernels* k = kernels(id(t));
  std::mt19937 rng(99);
  const int64_t n = 512;
  const auto row = random_rows(t, 1, n, rng);
  const auto x = random_floats(n, rng);
  std::vector<uint8_t> shifted(row.size() + 1);
  std::memcpy(shifted.data() + 1, row.data(), row.size());
  const float a = k->dot(row.data(), x.data(), n);
  const float b = k->dot(shifted.data() + 1, x.data(), n);
  EXPECT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b)) << name(t);
  std::vector<float> wa(n), wb(n);
  k->dequantize(row.data(), wa.data(), n);
  k->dequantize(shifted.data() + 1, wb.data(), n);
  EXPECT_EQ(std::memcmp(wa.data(), wb.data(), n * sizeof(float)), 0) << name(t);
}

// Reference: y[t, r] = sum_i dequant(w)[r, i] * x[t, i] in double.
std::vector<double> naive_matmul(const Kernels& k, const std::vector<uint8_t>& rows, int64_t n_rows,
                                 int64_t n_cols, const std::vector<float>& x, int64_t n_tokens) {
  const uint64_t row_bytes = rows.size() / n_rows;
  std::vector<float> w(static_cast<size_t>(n_cols));
  std::vector<double> y(static_cast<size_t>(n_tokens * n_rows));  // (n_tokens, n_rows)
  for (int64_t r = 0; r < n_rows; ++r) {
    k.dequantize(rows.data() + r * row_bytes, w.data(), n_cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double s = 0;
      for (int64_t i = 0; i < n_cols; ++i) s += static_cast<double>(w[i]) * x[t * n_cols + i];
      y[t * n_rows + r] = s;
    }
  }
  return y;
}

TEST_P(PerType, MatmulRowsMatchesNaiveReference) {
  const GgmlType t = GetParam();
  const Kernels* k = kernels(id(t));
  std::mt19937 rng(7 + id(t));
  const int64_t n_cols = 512, n_rows = 12;
  const auto rows = random_rows(t, n_rows, n_cols, rng);
  const Matrix w{id(t), rows.data(), n_cols, n_rows, rows.size() / n_rows};
  constexpr uint32_t kSentinel = 0x7FC0DEADu;  // a NaN no kernel produces

  struct Range {
    int64_t begin, end;
  };
  for (int64_t n_tokens : {1, 3, 17}) {
    const auto x = random_floats(n_tokens * n_cols, rng);
    const auto ref = naive_matmul(*k, rows, n_rows, n_cols, x, n_tokens);
    for (Range range : {Range{0, n_rows}, Range{3, 8}, Range{0, 1}, Range{11, 12}, Range{5, 5}}) {
      std::vector<float> y(static_cast<size_t>(n_tokens * n_rows), std::bit_cast<float>(kSentinel));
      matmul_rows(w, x.data(), n_tokens, y.data(), range.begin, range.end);
      for (int64_t tok = 0; tok < n_tokens; ++tok) {
        for (int64_t r = 0; r < n_rows; ++r) {
          const float got = y[tok * n_rows + r];
          if (r < range.begin || r >= range.end) {
            ASSERT_EQ(std::bit_cast<uint32_t>(got), kSentinel)
                << name(t) << ": row " << r << " outside [" << range.begin << ", " << range.end
                << ") was written";
            continue;
          }
          double magnitude = 0;
          std::vector<float> wr(n_cols);
          k->dequantize(rows.data() + r * w.row_bytes, wr.data(), n_cols);
          for (int64_t i = 0; i < n_cols; ++i)
            magnitude += std::fabs(double(wr[i]) * x[tok * n_cols + i]);
          ASSERT_NEAR(got, ref[tok * n_rows + r], 1e-5 * magnitude)
              << name(t) << " n_tokens=" << n_tokens << " token " << tok << " row " << r;
          // Batched and single-token results are the same bits (kernels_impl.h).
          ASSERT_EQ(std::bit_cast<uint32_t>(got),
                    std::bit_cast<uint32_t>(
                        k->dot(rows.data() + r * w.row_bytes, x.data() + tok * n_cols, n_cols)))
              << name(t) << " n_tokens=" << n_tokens << " token " << tok << " row " << r;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, PerType, ::testing::ValuesIn(kSupported),
                         [](const ::testing::TestParamInfo<GgmlType>& param) {
                           return name(param.param);
                         });

TEST(Matmul, F32OddLengthsAndUnalignedRows) {
  // n_cols not a multiple of 8 exercises the accumulator tail; an odd row stride
  // makes rows unaligned, which must fall back to copying.
  std::mt19937 rng(5);
  for (int64_t n_cols : {1, 7, 13, 100}) {
    const int64_t n_rows = 5, n_tokens = 4;
    const auto x = random_floats(n_tokens * n_cols, rng);
    const auto wf = random_floats(n_rows * n_cols, rng);
    for (size_t pad : {0u, 1u}) {
      const uint64_t stride = 4 * n_cols + pad;
      std::vector<uint8_t> bytes(stride * n_rows + 1);
      for (int64_t r = 0; r < n_rows; ++r)
        std::memcpy(bytes.data() + r * stride + pad, wf.data() + r * n_cols, 4 * n_cols);
      const Matrix w{id(GgmlType::F32), bytes.data() + pad, n_cols, n_rows, stride};
      std::vector<float> y(n_tokens * n_rows);
      matmul_rows(w, x.data(), n_tokens, y.data(), 0, n_rows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < n_rows; ++r) {
          double s = 0, mag = 0;
          for (int64_t i = 0; i < n_cols; ++i) {
            s += double(wf[r * n_cols + i]) * x[t * n_cols + i];
            mag += std::fabs(double(wf[r * n_cols + i]) * x[t * n_cols + i]);
          }
          EXPECT_NEAR(y[t * n_rows + r], s, 1e-5 * mag + 1e-30);
        }
      }
    }
  }
}

TEST(Matmul, BrokenPreconditionsWriteNothing) {
  std::vector<uint8_t> bytes(4096, 0);
  std::vector<float> x(4 * 256, 1.0f);
  constexpr uint32_t kSentinel = 0x7FC0BEEFu;
  const auto untouched = [&](const Matrix& w) {
    std::vector<float> y(4 * 4, std::bit_cast<float>(kSentinel));
    matmul_rows(w, x.data(), 4, y.data(), 0, 4);
    matmul_rows(w, x.data(), 1, y.data(), 0, 4);
    for (float v : y) {
      if (std::bit_cast<uint32_t>(v) != kSentinel) return false;
    }
    return true;
  };
  EXPECT_TRUE(untouched(Matrix{id(GgmlType::IQ2_XXS), bytes.data(), 256, 4, 66}));  // no kernels
  EXPECT_TRUE(untouched(Matrix{999, bytes.data(), 256, 4, 256}));                   // unknown id
  EXPECT_TRUE(untouched(Matrix{id(GgmlType::Q4_0), bytes.data(), 100, 4, 72}));     // partial block
}

// ---- hand-built blocks with known values (independent of the fixtures) --------------

TEST(KnownBlocks, Q4_0) {
  BlockQ4_0 b{};
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  kernels(id(GgmlType::Q4_0))->dequantize(&b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f) << j;
    EXPECT_EQ(y[j + 16], (7 - j) * 0.5f) << j;
  }
}

TEST(KnownBlocks, Q5_1) {
  BlockQ5_1 b{};
  b.d = f32_to_f16(0.25f);
  b.m = f32_to_f16(-1.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((j & 0xF) | ((j & 0xF) << 4));
  const uint32_t qh = 0x80000001u;  // element 0 and element 31 get bit 4
  std::memcpy(b.qh, &qh, 4);
  float y[32];
  kernels(id(GgmlType::Q5_1))->dequantize(&b, y, 32);
  EXPECT_EQ(y[0], 16 * 0.25f - 1.0f);
  EXPECT_EQ(y[1], 1 * 0.25f - 1.0f);
  EXPECT_EQ(y[16], 0 * 0.25f - 1.0f);
  EXPECT_EQ(y[31], (15 + 16) * 0.25f - 1.0f);
}

TEST(KnownBlocks, Q4_K_ScalePacking) {
  // Sub-block s gets scale s + 1 (and s + 40 for s >= 4: exercises the high 2 bits)
  // and min 2s; every quant is 3.
  BlockQ4_K b{};
  b.d = f32_to_f16(1.0f);
  b.dmin = f32_to_f16(0.5f);
  int sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = s < 4 ? s + 1 : s + 40;
    mn[s] = s < 4 ? 2 * s : 2 * s + 48;
  }
  for (int s = 0; s < 4; ++s) {
    b.scales[s] = static_cast<uint8_t>(sc[s] | ((sc[s + 4] >> 4) << 6));
    b.scales[s + 4] = static_cast<uint8_t>(mn[s] | ((mn[s + 4] >> 4) << 6));
    b.scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 0xF) | ((mn[s + 4] & 0xF) << 4));
  }
  std::memset(b.qs, 0x33, sizeof(b.qs));
  float y[256];
  kernels(id(GgmlType::Q4_K))->dequantize(&b, y, 256);
  for (int e = 0; e < 256; ++e) {
    const int s = e / 32;
    EXPECT_EQ(y[e], 1.0f * sc[s] * 3 - 0.5f * mn[s]) << e;
  }
}

TEST(KnownBlocks, IQ4_XS) {
  BlockIQ4_XS b{};
  b.d = f32_to_f16(2.0f);
  b.scales_h = 0;
  for (int s = 0; s < 8; ++s) b.scales_h = static_cast<uint16_t>(b.scales_h | (2u << (2 * s)));
  for (int i = 0; i < 4; ++i) b.scales_l[i] = 0x31;  // even s: 1, odd s: 3
  for (int j = 0; j < 128; ++j) b.qs[j] = 0xF0;      // codes 0 (lo) and 15 (hi)
  float y[256];
  kernels(id(GgmlType::IQ4_XS))->dequantize(&b, y, 256);
  for (int s = 0; s < 8; ++s) {
    const float dl = 2.0f * static_cast<float>(((s % 2 ? 3 : 1) | (2 << 4)) - 32);
    EXPECT_EQ(y[32 * s], dl * -127.0f) << s;
    EXPECT_EQ(y[32 * s + 16], dl * 113.0f) << s;
  }
}

}  // namespace
}  // namespace attnscope::quant
