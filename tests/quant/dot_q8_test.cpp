// The int8 path and the instruction-set dispatch:
//   * activation quantization against its definition (round to nearest even of
//     x * 127 / max|x|), and every instruction set bit-identical to the scalar code;
//   * the scalar int8 dot products against a double-precision sum over the bit-exact
//     dequantizer and the dequantized activations (so every unpacker is checked
//     against ggml's layout), and within the activation-quantization bound of the f32 dot;
//   * every SIMD kernel (int8 and f32 paths) against the scalar reference;
//   * the f32 path's per-block dot equal to dequantize + dense dot on each instruction
//     set (batch invariance), and matmul_rows_q8 equal to per-row dot_q8.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "attnscope/quant.h"
#include "quant/q8_impl.h"
#include "support/quant_rows.h"

namespace attnscope::quant {
namespace {

using namespace testing;

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) <= static_cast<int>(detected_isa())) out.push_back(isa);
  }
  return out;
}

const detail::IsaKernels* table(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return &detail::scalar_kernels();
    case Isa::kAvx2:
      return detail::avx2_kernels();
    case Isa::kAvx512:
      return detail::avx512_kernels();
  }
  return nullptr;
}

std::vector<ActBlock> quantize_ref(const std::vector<float>& x) {
  std::vector<ActBlock> out(x.size() / 32);
  for (size_t b = 0; b < out.size(); ++b) detail::quantize_act_block_ref(x.data() + 32 * b, &out[b]);
  return out;
}

// n_rows random rows of type t with n columns, and one random activation row, also
// quantized by the reference.
struct Case {
  int64_t n_rows;
  std::vector<uint8_t> rows;
  std::vector<float> x;
  std::vector<ActBlock> xq;
  const uint8_t* row(int64_t r) const { return rows.data() + r * static_cast<int64_t>(rows.size() / n_rows); }
};
Case random_case(GgmlType t, int64_t n_rows, int64_t n, std::mt19937& rng) {
  Case c{n_rows, random_rows(t, n_rows, n, rng), {}, {}};
  c.x = random_floats(n, rng);
  c.xq = quantize_ref(c.x);
  return c;
}

TEST(Isa, DetectionAndParsing) {
  std::cout << "detected: " << isa_name(detected_isa()) << ", in use: " << isa_name(cpu_isa()) << "\n";
  EXPECT_LE(static_cast<int>(cpu_isa()), static_cast<int>(detected_isa()));
  ASSERT_TRUE(parse_isa("scalar").ok());
  EXPECT_EQ(*parse_isa("scalar"), Isa::kScalar);
  auto bad = parse_isa("sse9");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("expected scalar, avx2 or avx512"), std::string::npos);
  if (detected_isa() != Isa::kAvx512) {
    auto too_high = parse_isa("avx512");
    ASSERT_FALSE(too_high.ok());
    EXPECT_NE(too_high.error().message.find("supports at most"), std::string::npos);
  }
  // Requesting an instruction set the CPU lacks gives no kernels rather than a crash.
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
      EXPECT_EQ(kernels(id(GgmlType::Q8_0), isa), nullptr);
    }
  }
}

TEST(ActivationQuantization, FollowsItsDefinition) {
  std::mt19937 rng(7);
  auto x = random_floats(32 * 64, rng);
  for (int i = 0; i < 32; ++i) x[32 * 3 + i] = 0.0f;        // an all-zero block
  for (int i = 0; i < 32; ++i) x[32 * 4 + i] = 1e-30f * i;  // tiny values
  x[32 * 5 + 7] = 1000.0f;                                  // one outlier
  const auto q = quantize_ref(x);
  for (size_t b = 0; b < q.size(); ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * b + i]));
    EXPECT_EQ(q[b].d, amax / 127.0f) << b;
    int sum[2] = {0, 0};
    for (int i = 0; i < 32; ++i) {
      const float xi = x[32 * b + i];
      EXPECT_LE(std::abs(q[b].q[i]), 127);
      // Within half a step, and the nearest integer (ties to even).
      const double scaled = amax > 0 ? double{xi} * (127.0 / amax) : 0.0;
      EXPECT_LE(std::fabs(scaled - q[b].q[i]), 0.5 + 1e-5) << b << " " << i;
      EXPECT_LE(std::fabs(double{xi} - double{q[b].d} * q[b].q[i]), 0.5 * q[b].d * (1 + 1e-5) + 1e-37);
      sum[i / 16] += q[b].q[i];
    }
    EXPECT_EQ(q[b].sum[0], sum[0]);
    EXPECT_EQ(q[b].sum[1], sum[1]);
    if (amax > 0) {
      int peak = 0;
      for (int i = 0; i < 32; ++i) peak = std::max(peak, std::abs(int{q[b].q[i]}));
      EXPECT_EQ(peak, 127) << b;
    }
  }
  EXPECT_EQ(q[3].d, 0.0f);
  EXPECT_EQ(q[5].q[7], 127);
}

TEST(ActivationQuantization, NonFiniteInputGivesNaNScale) {
  for (float bad : {INFINITY, -INFINITY, NAN}) {
    std::vector<float> x(32, 0.5f);
    x[9] = bad;
    for (Isa isa : available_isas()) {
      ActBlock out;
      table(isa)->quantize_block(x.data(), &out);
      EXPECT_TRUE(std::isnan(out.d)) << isa_name(isa);
      for (int8_t v : out.q) EXPECT_EQ(v, 0);
    }
  }
}

TEST(ActivationQuantization, EveryInstructionSetGivesTheSameBits) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mag(-30.0f, 30.0f);
  std::vector<float> x(32 * 512);
  for (auto& v : x) v = std::ldexp(mag(rng) / 30.0f, static_cast<int>(mag(rng) / 3));
  for (int i = 0; i < 32; ++i) x[i] = 0.5f * static_cast<float>(i - 16);  // exact ties
  const auto ref = quantize_ref(x);
  for (Isa isa : available_isas()) {
    std::vector<ActBlock> got(ref.size());
    for (size_t b = 0; b < got.size(); ++b) table(isa)->quantize_block(x.data() + 32 * b, &got[b]);
    for (size_t b = 0; b < got.size(); ++b) {
      ASSERT_EQ(std::memcmp(&got[b], &ref[b], sizeof(ActBlock)), 0) << isa_name(isa) << " block " << b;
    }
  }
}

class Int8PerType : public ::testing::TestWithParam<GgmlType> {};

// sum_i dequant(w)[i] * d_j * a[i] in double, and the bound on how far the int8 dot may
// be from the f32 dot: sum_i |w[i]| * d_j / 2.
struct Exact {
  double value = 0, magnitude = 0, quant_bound = 0, f32_dot = 0;
};
Exact exact_dot(const std::vector<float>& w, const std::vector<float>& x, const std::vector<ActBlock>& xq) {
  Exact e;
  for (size_t i = 0; i < w.size(); ++i) {
    const ActBlock& a = xq[i / 32];
    const double xi = double{a.d} * a.q[i % 32];
    e.value += double{w[i]} * xi;
    e.magnitude += std::fabs(double{w[i]} * xi);
    e.quant_bound += std::fabs(double{w[i]}) * a.d * 0.5;
    e.f32_dot += double{w[i]} * x[i];
  }
  return e;
}

TEST_P(Int8PerType, ReferenceMatchesDequantizedWeightsAndQuantizedActivations) {
  const GgmlType t = GetParam();
  using Ref = float (*)(const void*, const ActBlock*, int64_t);
  const Ref refs[] = {detail::dot_q8_q8_0_ref, detail::dot_q8_q4_0_ref, detail::dot_q8_q4_1_ref,
                      detail::dot_q8_q5_0_ref, detail::dot_q8_q5_1_ref, detail::dot_q8_iq4_nl_ref,
                      detail::dot_q8_q2_k_ref, detail::dot_q8_q3_k_ref, detail::dot_q8_q4_k_ref,
                      detail::dot_q8_q5_k_ref, detail::dot_q8_q6_k_ref, detail::dot_q8_iq4_xs_ref};
  const GgmlType ref_types[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                                GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K,
                                GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS};
  Ref ref = nullptr;
  for (size_t i = 0; i < std::size(ref_types); ++i) {
    if (ref_types[i] == t) ref = refs[i];
  }
  ASSERT_NE(ref, nullptr);
  const Kernels* scalar = kernels(id(t), Isa::kScalar);
  std::mt19937 rng(99 + id(t));
  for (int64_t n : {256, 1024, 4096}) {
    const Case c = random_case(t, 6, n, rng);
    const auto& x = c.x;
    const auto& xq = c.xq;
    std::vector<float> w(static_cast<size_t>(n));
    for (int64_t r = 0; r < c.n_rows; ++r) {
      const uint8_t* row = c.row(r);
      scalar->dequantize(row, w.data(), n);
      const Exact e = exact_dot(w, x, xq);
      const float got = ref(row, xq.data(), n);
      EXPECT_NEAR(got, e.value, 1e-5 * e.magnitude + 1e-30) << name(t) << " n=" << n << " row " << r;
      EXPECT_LE(std::fabs(double{got} - e.f32_dot), e.quant_bound * 1.001 + 1e-5 * e.magnitude)
          << name(t) << " n=" << n << " row " << r;
      if (scalar->dot_q8 != nullptr) {
        EXPECT_EQ(scalar->dot_q8(row, xq.data(), nullptr, n), got);
      }
    }
  }
}

TEST_P(Int8PerType, SimdMatchesTheScalarReference) {
  const GgmlType t = GetParam();
  const Kernels* scalar = kernels(id(t), Isa::kScalar);
  std::mt19937 rng(5 + id(t));
  for (Isa isa : available_isas()) {
    const Kernels* k = kernels(id(t), isa);
    ASSERT_NE(k, nullptr);
    // Which types take the int8 path must not depend on the instruction set.
    ASSERT_EQ(k->dot_q8 == nullptr, scalar->dot_q8 == nullptr) << name(t) << " " << isa_name(isa);
    ASSERT_EQ(k->dot_q8_x4 == nullptr, k->dot_q8 == nullptr) << name(t) << " " << isa_name(isa);
    for (int64_t n : {256, 2048, 14336}) {
      const Case c = random_case(t, 4, n, rng);
      const auto& x = c.x;
      const auto& xq = c.xq;
      std::vector<float> w(static_cast<size_t>(n));
      for (int64_t r = 0; r < c.n_rows; ++r) {
        const uint8_t* row = c.row(r);
        scalar->dequantize(row, w.data(), n);
        double mag = 0, mag_f = 0;
        for (int64_t i = 0; i < n; ++i) {
          mag += std::fabs(double{w[i]} * xq[i / 32].d * xq[i / 32].q[i % 32]);
          mag_f += std::fabs(double{w[i]} * x[i]);
        }
        if (k->dot_q8 != nullptr) {
          const float got = k->dot_q8(row, xq.data(), nullptr, n);
          EXPECT_NEAR(got, scalar->dot_q8(row, xq.data(), nullptr, n), 2e-6 * mag + 1e-30)
              << name(t) << " " << isa_name(isa) << " n=" << n;
          // With the scale table: the same bits as reading the scales from the blocks.
          const auto nb = static_cast<int64_t>(xq.size());
          std::vector<float> xs(static_cast<size_t>(2 * nb));
          act_scale_table(xq.data(), nb, xs.data());
          EXPECT_EQ(k->dot_q8(row, xq.data(), xs.data(), n), got) << name(t) << " " << isa_name(isa) << " n=" << n;
          // Four tokens at once, with and without their tables: each result has exactly
          // the bits of the one-token kernel.
          std::vector<ActBlock> four(4 * xq.size());
          std::vector<float> x4(static_cast<size_t>(n)), four_xs(static_cast<size_t>(8 * nb));
          for (int tok = 0; tok < 4; ++tok) {
            for (int64_t i = 0; i < n; ++i) x4[i] = x[(i * (tok + 3)) % n] * static_cast<float>(tok + 1);
            const auto q = quantize_ref(x4);
            std::copy(q.begin(), q.end(), four.begin() + tok * nb);
            act_scale_table(q.data(), nb, four_xs.data() + 2 * tok * nb);
          }
          float out[4], out_xs[4];
          k->dot_q8_x4(row, four.data(), nullptr, nb, n, out);
          k->dot_q8_x4(row, four.data(), four_xs.data(), nb, n, out_xs);
          for (int tok = 0; tok < 4; ++tok) {
            const float one = k->dot_q8(row, four.data() + tok * nb, nullptr, n);
            EXPECT_EQ(out[tok], one) << name(t) << " " << isa_name(isa) << " token " << tok;
            EXPECT_EQ(out_xs[tok], one) << name(t) << " " << isa_name(isa) << " token " << tok << " (scale table)";
          }
        }
        EXPECT_NEAR(k->dot(row, x.data(), n), scalar->dot(row, x.data(), n), 2e-6 * mag_f + 1e-30)
            << name(t) << " " << isa_name(isa) << " n=" << n;
        // Batch invariance of the f32 path on this instruction set.
        EXPECT_EQ(k->dot(row, x.data(), n), table(isa)->dot_dense(w.data(), x.data(), n))
            << name(t) << " " << isa_name(isa) << " n=" << n;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllQuantTypes, Int8PerType,
                         ::testing::Values(GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                                           GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K,
                                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS),
                         [](const auto& param_info) { return std::string(ggml_type_name(id(param_info.param))); });

TEST(DenseKernels, MatchTheScalarReference) {
  std::mt19937 rng(3);
  for (Isa isa : available_isas()) {
    for (int64_t n : {1, 7, 8, 31, 33, 64, 100, 4096}) {
      const auto a = random_floats(n, rng), b = random_floats(n, rng);
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(double{a[i]} * b[i]);
      EXPECT_NEAR(table(isa)->dot_dense(a.data(), b.data(), n), detail::dot_dense_ref(a.data(), b.data(), n),
                  2e-6 * mag)
          << isa_name(isa) << " n=" << n;
      auto y1 = random_floats(n, rng);
      auto y2 = y1;
      table(isa)->axpy(0.37f, a.data(), y1.data(), n);
      detail::axpy_ref(0.37f, a.data(), y2.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y1[i], y2[i], 1e-6f) << isa_name(isa);
    }
  }
}

TEST(AttentionKernels, MatchTheScalarReference) {
  std::mt19937 rng(21);
  for (Isa isa : available_isas()) {
    const detail::IsaKernels* k = table(isa);
    for (int64_t dim : {64, 128, 80, 7}) {
      for (int64_t n_keys : {1, 3, 4, 9, 130}) {
        const int64_t stride = dim * 3;  // keys of one KV head among three
        const auto q = random_floats(dim, rng), keys = random_floats(stride * n_keys, rng);
        std::vector<float> got(static_cast<size_t>(n_keys)), want(got.size());
        k->attn_scores(q.data(), keys.data(), stride, n_keys, dim, 0.125f, got.data());
        detail::attn_scores_ref(q.data(), keys.data(), stride, n_keys, dim, 0.125f, want.data());
        for (int64_t j = 0; j < n_keys; ++j) {
          double mag = 0;
          for (int64_t d = 0; d < dim; ++d) mag += std::fabs(double{q[d]} * keys[j * stride + d]);
          EXPECT_NEAR(got[j], want[j], 2e-6 * mag * 0.125) << isa_name(isa) << " dim " << dim << " key " << j;
        }
        // Softmax numerators: relative error of e^x about 1 ulp, the sum likewise.
        auto e_got = random_floats(n_keys, rng);
        for (auto& v : e_got) v *= 40.0f;
        auto e_want = e_got;
        const float max = *std::max_element(e_got.begin(), e_got.end());
        const float s_got = k->exp_shifted(e_got.data(), n_keys, max);
        const float s_want = detail::exp_shifted_ref(e_want.data(), n_keys, max);
        EXPECT_NEAR(s_got, s_want, 1e-6 * s_want) << isa_name(isa);
        for (int64_t j = 0; j < n_keys; ++j) EXPECT_NEAR(e_got[j], e_want[j], 4e-7 * e_want[j]) << isa_name(isa);
        const auto p = random_floats(n_keys, rng), v = random_floats(stride * n_keys, rng);
        std::vector<float> out(static_cast<size_t>(dim), 9.0f), out_ref(out.size(), -9.0f);
        k->attn_values(p.data(), v.data(), stride, n_keys, dim, out.data());
        detail::attn_values_ref(p.data(), v.data(), stride, n_keys, dim, out_ref.data());
        for (int64_t d = 0; d < dim; ++d) EXPECT_NEAR(out[d], out_ref[d], 1e-5) << isa_name(isa) << " d " << d;
      }
    }
    // e^x: 1 at 0, 0 below FLT_MIN's range and for -inf, about 1 ulp in between.
    std::vector<float> x = {0.0f, -1e-8f, -0.5f, -1.0f, -10.0f, -50.0f, -87.0f, -88.0f, -100.0f, -INFINITY};
    auto want = x;
    k->exp_shifted(x.data(), static_cast<int64_t>(x.size()), 0.0f);
    for (size_t i = 0; i < want.size(); ++i) {
      const float e = std::exp(want[i]);
      if (want[i] < -87.3f) {
        EXPECT_LE(x[i], 1.2e-38f) << isa_name(isa) << " x=" << want[i];
      } else {
        EXPECT_NEAR(x[i], e, 3e-7 * e) << isa_name(isa) << " x=" << want[i];
      }
    }
    EXPECT_EQ(x[0], 1.0f);
    EXPECT_EQ(x.back(), 0.0f);
  }
}

TEST(DenseKernels, SwigluMatchesTheReference) {
  std::mt19937 rng(8);
  std::vector<float> gate = random_floats(1001, rng), up = random_floats(1001, rng);
  for (size_t i = 0; i < gate.size(); ++i) gate[i] *= 30.0f;  // both tails of the sigmoid
  gate[0] = 0.0f;
  gate[1] = -100.0f;
  gate[2] = 100.0f;
  for (Isa isa : available_isas()) {
    auto got = gate, want = gate;
    table(isa)->swiglu(got.data(), up.data(), static_cast<int64_t>(got.size()));
    detail::swiglu_ref(want.data(), up.data(), static_cast<int64_t>(want.size()));
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-6 * (1 + std::fabs(want[i]))) << isa_name(isa) << " g=" << gate[i];
    }
  }
}

TEST(MatmulQ8, EqualsOneDotPerRowAndTokenForAnyRangeAndBatch) {
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    std::mt19937 rng(17 + id(t));
    const int64_t n_cols = 512, n_rows = 150, n_tokens = 7;  // 4 at once + 3 single
    const auto rows = random_rows(t, n_rows, n_cols, rng);
    const Matrix w{.type = id(t), .data = rows.data(), .n_cols = n_cols, .n_rows = n_rows,
                   .row_bytes = rows.size() / n_rows};
    const auto x = random_floats(n_tokens * n_cols, rng);
    std::vector<ActBlock> xq(static_cast<size_t>(n_tokens * n_cols / 32));
    quantize_activations(x.data(), n_tokens, n_cols, xq.data());
    std::vector<float> y(static_cast<size_t>(n_tokens * n_rows), -1.0f);
    matmul_rows_q8(w, xq.data(), n_tokens, y.data(), 3, 141);
    const Kernels* k = kernels(id(t));
    for (int64_t tok = 0; tok < n_tokens; ++tok) {
      for (int64_t r = 0; r < n_rows; ++r) {
        const float want = (r >= 3 && r < 141)
                               ? k->dot_q8(rows.data() + r * w.row_bytes, xq.data() + tok * (n_cols / 32), nullptr,
                                           n_cols)
                               : -1.0f;
        ASSERT_EQ(y[tok * n_rows + r], want) << name(t) << " token " << tok << " row " << r;
      }
    }
    // One token at a time gives the same bits as the batch.
    std::vector<float> y1(static_cast<size_t>(n_rows));
    matmul_rows_q8(w, xq.data() + 2 * (n_cols / 32), 1, y1.data(), 0, n_rows);
    for (int64_t r = 3; r < 141; ++r) ASSERT_EQ(y1[r], y[2 * n_rows + r]);
  }
}

}  // namespace
}  // namespace attnscope::quant
