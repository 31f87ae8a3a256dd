// Q8_0 weights packed into 16-row panels and the panel GEMM:
//   * pack_panels writes the layout quant.h documents (read back here independently);
//   * the scalar reference equals its definition (per block an exact integer sum, then
//     one float FMA) computed in double, and agrees with the unpacked dot_q8;
//   * every instruction set gives the reference's bits, for every tile shape and tail,
//     including the byte -128 that ggml's quantizer never writes but a file may hold;
//   * matmul_rows_q8 on packed weights: any row range (panels cut at either end or both
//     inside one) and any batch give the same bits, and rows outside the range are kept.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "attnscope/quant.h"
#include "quant/blocks.h"
#include "quant/q8_impl.h"
#include "support/isa_tables.h"
#include "support/quant_rows.h"

namespace attnscope::quant {
namespace {

using namespace testing;

struct PackedCase {
  std::vector<uint8_t> rows;  // (n_rows, row_bytes) Q8_0
  Matrix w;
  std::vector<uint8_t> packed;  // packed_bytes(w)

  PackedCase(int64_t n_rows, int64_t n_cols, std::mt19937& rng) : rows(random_rows(GgmlType::Q8_0, n_rows, n_cols, rng)) {
    w = Matrix{.type = id(GgmlType::Q8_0), .data = rows.data(), .n_cols = n_cols, .n_rows = n_rows,
               .row_bytes = rows.size() / static_cast<size_t>(n_rows)};
    packed.resize(packed_bytes(w));
    // Two calls: panels are independent of each other.
    const int64_t half = panel_count(w) / 2;
    pack_panels(w, 0, half, packed.data());
    pack_panels(w, half, panel_count(w), packed.data());
    w.packed = packed.data();
  }
  BlockQ8_0 block(int64_t r, int64_t b) const {
    BlockQ8_0 blk;
    std::memcpy(&blk, rows.data() + r * w.row_bytes + b * sizeof(BlockQ8_0), sizeof(blk));
    return blk;
  }
};

std::vector<ActBlock> quantized(const std::vector<float>& x, int64_t n_tokens, int64_t n_cols) {
  std::vector<ActBlock> out(static_cast<size_t>(n_tokens * n_cols / 32));
  quantize_activations(x.data(), n_tokens, n_cols, out.data());
  return out;
}

// The whole (n_tokens, 16 * panels) output of the scalar reference.
std::vector<float> reference(const PackedCase& c, const std::vector<ActBlock>& xq, int64_t n_tokens) {
  const int64_t width = panel_count(c.w) * kPanelRows;
  std::vector<float> y(static_cast<size_t>(n_tokens * width));
  detail::gemm_packed_ref(c.packed.data(), panel_count(c.w), xq.data(), c.w.n_cols / 32, n_tokens, y.data(), width);
  return y;
}

TEST(Packing, FollowsTheDocumentedLayout) {
  std::mt19937 rng(1);
  const int64_t n_rows = 37, n_cols = 96, nb = 3;  // three panels, the last one with 5 rows
  const PackedCase c(n_rows, n_cols, rng);
  ASSERT_TRUE(packable(c.w));
  ASSERT_EQ(panel_count(c.w), 3);
  ASSERT_EQ(packed_bytes(c.w), 3u * nb * 544u);
  for (int64_t p = 0; p < 3; ++p) {
    const uint8_t* scales = c.packed.data() + p * nb * 544;
    const uint8_t* quants = scales + nb * 32;
    for (int64_t j = 0; j < 16; ++j) {
      const int64_t r = p * 16 + j;
      for (int64_t b = 0; b < nb; ++b) {
        uint16_t d;
        std::memcpy(&d, scales + (b * 16 + j) * 2, 2);
        const BlockQ8_0 blk = r < n_rows ? c.block(r, b) : BlockQ8_0{};
        ASSERT_EQ(d, blk.d) << "row " << r << " block " << b;
        for (int i = 0; i < 32; ++i) {
          const uint8_t byte = quants[((b * 8 + i / 4) * 16 + j) * 4 + i % 4];
          ASSERT_EQ(static_cast<int8_t>(byte ^ 0x80), blk.qs[i]) << "row " << r << " block " << b << " value " << i;
        }
      }
    }
  }
}

TEST(Packing, RowsDequantizeAsTheQ8_0Rows) {
  std::mt19937 rng(8);
  const int64_t n_rows = 37, n_cols = 96;
  const PackedCase c(n_rows, n_cols, rng);
  const Kernels* k = kernels(id(GgmlType::Q8_0), Isa::kScalar);
  for (int64_t r = 0; r < n_rows; ++r) {
    std::vector<float> want(n_cols), got(n_cols, -1.0f);
    k->dequantize(c.rows.data() + r * c.w.row_bytes, want.data(), n_cols);
    dequantize_packed_row(c.w, r, got.data());
    ASSERT_EQ(got, want) << "row " << r;
  }
}

TEST(Packing, OnlyQ8_0) {
  std::mt19937 rng(2);
  const auto rows = random_rows(GgmlType::Q4_K, 4, 256, rng);
  const Matrix q4k{.type = id(GgmlType::Q4_K), .data = rows.data(), .n_cols = 256, .n_rows = 4,
                   .row_bytes = rows.size() / 4};
  EXPECT_FALSE(packable(q4k));
  Matrix q8{.type = id(GgmlType::Q8_0), .data = rows.data(), .n_cols = 64, .n_rows = 4, .row_bytes = 68};
  EXPECT_TRUE(packable(q8));
  q8.row_bytes = 70;  // not the Q8_0 row size of 64 columns
  EXPECT_FALSE(packable(q8));
}

TEST(PackedGemm, ReferenceIsTheDefinition) {
  std::mt19937 rng(3);
  const int64_t n_rows = 40, n_cols = 256, nb = 8, n_tokens = 3;
  const PackedCase c(n_rows, n_cols, rng);
  const auto x = random_floats(n_tokens * n_cols, rng);
  const auto xq = quantized(x, n_tokens, n_cols);
  const auto y = reference(c, xq, n_tokens);
  const int64_t width = panel_count(c.w) * 16;
  const Kernels* k = kernels(id(GgmlType::Q8_0), Isa::kScalar);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < width; ++r) {
      double want = 0.0, magnitude = 0.0;
      for (int64_t b = 0; b < nb && r < n_rows; ++b) {
        const BlockQ8_0 blk = c.block(r, b);
        const ActBlock& a = xq[static_cast<size_t>(t * nb + b)];
        int64_t sum = 0;
        for (int i = 0; i < 32; ++i) sum += int64_t{blk.qs[i]} * a.q[i];
        const double term = double{f16_to_f32(blk.d)} * double{a.d} * static_cast<double>(sum);
        want += term;
        magnitude += std::fabs(term);
      }
      const float got = y[static_cast<size_t>(t * width + r)];
      if (r >= n_rows) {
        ASSERT_EQ(got, 0.0f) << "padding row " << r;
        continue;
      }
      // nb float roundings of the running sum and of d_w * d_x.
      ASSERT_NEAR(got, want, 2.0 * nb * 0x1p-24 * magnitude + 1e-30) << "token " << t << " row " << r;
      const float dot = k->dot_q8(c.rows.data() + r * c.w.row_bytes, xq.data() + t * nb, n_cols);
      ASSERT_NEAR(got, dot, 4.0 * nb * 0x1p-24 * magnitude + 1e-30) << "token " << t << " row " << r;
    }
  }
}

TEST(PackedGemm, EveryInstructionSetGivesTheReferenceBits) {
  std::mt19937 rng(4);
  const int64_t n_cols = 160, nb = 5;
  const PackedCase c(9 * 16 - 3, n_cols, rng);  // 9 panels: tiles of 4, 2 and 1 with tails
  const int64_t width = 9 * 16;
  for (int64_t n_tokens : {1, 2, 3, 4, 5, 7, 9}) {
    const auto xq = quantized(random_floats(n_tokens * n_cols, rng), n_tokens, n_cols);
    for (int64_t n_panels : {1, 2, 3, 5, 8, 9}) {
      std::vector<float> want(static_cast<size_t>(n_tokens * width), -1.0f);
      detail::gemm_packed_ref(c.packed.data(), n_panels, xq.data(), nb, n_tokens, want.data(), width);
      for (Isa isa : available_isas()) {
        std::vector<float> got(want.size(), -1.0f);
        table(isa)->gemm_packed(c.packed.data(), n_panels, xq.data(), nb, n_tokens, got.data(), width);
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
            << isa_name(isa) << " tokens " << n_tokens << " panels " << n_panels;
      }
    }
  }
}

TEST(PackedGemm, HandlesTheByteMinus128) {
  std::mt19937 rng(5);
  PackedCase c(16, 64, rng);
  // One panel of two blocks: 2 x 16 f16 scales (kept), then the quants: all -128.
  for (size_t i = 2 * 32; i < c.packed.size(); ++i) c.packed[i] = 0x00;
  const auto x = random_floats(2 * 64, rng);
  const auto xq = quantized(x, 2, 64);
  for (int64_t t = 0; t < 2; ++t) {
    for (int64_t j = 0; j < 16; ++j) {
      float want = 0.0f;
      for (int64_t b = 0; b < 2; ++b) {
        const ActBlock& a = xq[static_cast<size_t>(t * 2 + b)];
        int32_t sum = 0;
        for (int i = 0; i < 32; ++i) sum += -128 * a.q[i];
        uint16_t d;
        std::memcpy(&d, c.packed.data() + (b * 16 + j) * 2, 2);
        want = std::fma(static_cast<float>(sum), f16_to_f32(d) * a.d, want);
      }
      for (Isa isa : available_isas()) {
        std::vector<float> got(2 * 16);
        table(isa)->gemm_packed(c.packed.data(), 1, xq.data(), 2, 2, got.data(), 16);
        ASSERT_EQ(got[static_cast<size_t>(t * 16 + j)], want) << isa_name(isa) << " token " << t << " row " << j;
      }
    }
  }
}

TEST(PackedGemm, NonFiniteActivationsGiveNaN) {
  std::mt19937 rng(6);
  const PackedCase c(16, 64, rng);
  auto x = random_floats(2 * 64, rng);
  x[64 + 5] = std::numeric_limits<float>::infinity();  // token 1
  const auto xq = quantized(x, 2, 64);
  for (Isa isa : available_isas()) {
    std::vector<float> y(2 * 16);
    table(isa)->gemm_packed(c.packed.data(), 1, xq.data(), 2, 2, y.data(), 16);
    for (int j = 0; j < 16; ++j) {
      EXPECT_TRUE(std::isfinite(y[static_cast<size_t>(j)])) << isa_name(isa);
      EXPECT_TRUE(std::isnan(y[static_cast<size_t>(16 + j)])) << isa_name(isa);
    }
  }
}

TEST(PackedGemm, MatmulGivesTheSameBitsForAnyRangeAndBatch) {
  std::mt19937 rng(7);
  const int64_t n_rows = 75, n_cols = 128, n_tokens = 7;  // 5 panels, the last with 11 rows
  const PackedCase c(n_rows, n_cols, rng);
  const auto xq = quantized(random_floats(n_tokens * n_cols, rng), n_tokens, n_cols);
  const auto want = reference(c, xq, n_tokens);
  const int64_t width = panel_count(c.w) * 16;
  const std::pair<int64_t, int64_t> ranges[] = {{0, 75}, {3, 10}, {16, 32}, {5, 40}, {20, 75}, {31, 33}, {64, 75},
                                                {0, 16}, {17, 18}};
  for (const auto& [lo, hi] : ranges) {
    std::vector<float> y(static_cast<size_t>(n_tokens * n_rows), -1.0f);
    matmul_rows_q8(c.w, QuantizedActs{xq.data(), nullptr}, n_tokens, y.data(), lo, hi);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < n_rows; ++r) {
        const float expect = (r >= lo && r < hi) ? want[static_cast<size_t>(t * width + r)] : -1.0f;
        ASSERT_EQ(y[static_cast<size_t>(t * n_rows + r)], expect) << "rows [" << lo << ", " << hi << ") token " << t
                                                                   << " row " << r;
      }
    }
  }
  // One token at a time: the same bits as in the batch.
  for (int64_t t = 0; t < n_tokens; ++t) {
    std::vector<float> y1(static_cast<size_t>(n_rows));
    matmul_rows_q8(c.w, QuantizedActs{xq.data() + t * (n_cols / 32), nullptr}, 1, y1.data(), 0, n_rows);
    for (int64_t r = 0; r < n_rows; ++r) ASSERT_EQ(y1[static_cast<size_t>(r)], want[static_cast<size_t>(t * width + r)]);
  }
  // Without 32-value activation blocks nothing is written.
  std::vector<float> y0(static_cast<size_t>(n_rows), -2.0f);
  matmul_rows_q8(c.w, QuantizedActs{}, 1, y0.data(), 0, n_rows);
  for (float v : y0) ASSERT_EQ(v, -2.0f);
}

}  // namespace
}  // namespace attnscope::quant
