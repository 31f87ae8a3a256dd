// The int8 path and the instruction-set dispatch:
//   * activation quantization against its definition (round to nearest even of
//     x * 127 / max|x|), and every instruction set bit-identical to the scalar code;
//   * the scalar int8 dot products against a double-precision sum over the bit-exact
//     dequantizer and the dequantized activations (so every unpacker is checked
//     against ggml's layout), and within the activation-quantization bound of the f32 dot;
//   * every SIMD kernel (int8 and f32 paths, attention, RMSNorm, RoPE) against the
//     scalar reference;
//   * the f32 path's per-block dot equal to dequantize + dense dot on each instruction
//     set (batch invariance), and matmul_rows_q8 equal to per-row dot_q8.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "attnscope/quant.h"
#include "quant/q8_impl.h"
#include "support/isa_tables.h"
#include "support/quant_rows.h"

namespace attnscope::quant {
namespace {

using namespace testing;

std::vector<ActBlock> quantize_ref(const std::vector<float>& x) {
  std::vector<ActBlock> out(x.size() / 32);
  for (size_t b = 0; b < out.size(); ++b) detail::quantize_act_block_ref(x.data() + 32 * b, &out[b]);
  return out;
}
std::vector<ActBlockK> quantize_k_ref(const std::vector<float>& x) {
  std::vector<ActBlockK> out(x.size() / 256);
  for (size_t b = 0; b < out.size(); ++b) detail::quantize_act_block_k_ref(x.data() + 256 * b, &out[b]);
  return out;
}

// Activations quantized by the references in both formats, and what an int8 kernel of
// either format sees of element i: d * q (value) and d (scale).
struct QuantRow {
  std::vector<ActBlock> b32;
  std::vector<ActBlockK> b256;
  explicit QuantRow(const std::vector<float>& x) : b32(quantize_ref(x)), b256(quantize_k_ref(x)) {}
  const void* in(ActFormat f) const {
    return f == ActFormat::kBlock256 ? static_cast<const void*>(b256.data()) : b32.data();
  }
  double value(ActFormat f, size_t i) const {
    return f == ActFormat::kBlock256 ? double{b256[i / 256].d} * b256[i / 256].q[i % 256]
                                     : double{b32[i / 32].d} * b32[i / 32].q[i % 32];
  }
  double scale(ActFormat f, size_t i) const { return f == ActFormat::kBlock256 ? b256[i / 256].d : b32[i / 32].d; }
};

// n_rows random rows of type t with n columns, and one random activation row, also
// quantized by the references.
struct Case {
  int64_t n_rows;
  std::vector<uint8_t> rows;
  std::vector<float> x;
  QuantRow xq;
  const uint8_t* row(int64_t r) const { return rows.data() + r * static_cast<int64_t>(rows.size() / n_rows); }
};
Case random_case(GgmlType t, int64_t n_rows, int64_t n, std::mt19937& rng) {
  auto rows = random_rows(t, n_rows, n, rng);
  auto x = random_floats(n, rng);
  QuantRow xq(x);
  return Case{n_rows, std::move(rows), std::move(x), std::move(xq)};
}

TEST(Isa, DetectionAndParsing) {
  std::cout << "detected: " << isa_name(detected_isa()) << ", in use: " << isa_name(cpu_isa())
            << ", AVX-512 BF16: " << (cpu_has_avx512_bf16() ? "yes" : "no") << "\n";
  // The kernel's view of the CPU as the independent reference.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    EXPECT_EQ(cpu_has_avx512_bf16(), (line + " ").find(" avx512_bf16 ") != std::string::npos) << line;
    break;
  }
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

// Checks one quantized block of kN values x against the definition: d = max|x| / 127,
// q the nearest integer (ties to even) of x * 127 / max|x|, sums of q over each 16.
template <int kN>
void expect_quantized(const float* x, float d, const int8_t* q, const int16_t* sum16, size_t b) {
  float amax = 0;
  for (int i = 0; i < kN; ++i) amax = std::max(amax, std::fabs(x[i]));
  EXPECT_EQ(d, amax / 127.0f) << b;
  int peak = 0;
  for (int s = 0; s < kN / 16; ++s) {
    int sum = 0;
    for (int i = 16 * s; i < 16 * s + 16; ++i) {
      EXPECT_LE(std::abs(q[i]), 127);
      // Within half a step, and the nearest integer (ties to even).
      const double scaled = amax > 0 ? double{x[i]} * (127.0 / amax) : 0.0;
      EXPECT_LE(std::fabs(scaled - q[i]), 0.5 + 1e-5) << b << " " << i;
      EXPECT_LE(std::fabs(double{x[i]} - double{d} * q[i]), 0.5 * d * (1 + 1e-5) + 1e-37);
      sum += q[i];
      peak = std::max(peak, std::abs(int{q[i]}));
    }
    EXPECT_EQ(sum16[s], sum) << b << " sum " << s;
  }
  if (amax > 0) {
    EXPECT_EQ(peak, 127) << b;
  }
}

TEST(ActivationQuantization, FollowsItsDefinition) {
  std::mt19937 rng(7);
  auto x = random_floats(256 * 8, rng);
  for (int i = 0; i < 256; ++i) x[256 * 3 + i] = 0.0f;        // an all-zero block (both sizes)
  for (int i = 0; i < 32; ++i) x[32 * 4 + i] = 1e-30f * i;    // tiny values
  x[32 * 5 + 7] = 1000.0f;                                    // one outlier
  const auto q = quantize_ref(x);
  for (size_t b = 0; b < q.size(); ++b) expect_quantized<32>(x.data() + 32 * b, q[b].d, q[b].q, q[b].sum, b);
  EXPECT_EQ(q[3 * 8].d, 0.0f);
  EXPECT_EQ(q[5].q[7], 127);
  const auto k = quantize_k_ref(x);
  for (size_t b = 0; b < k.size(); ++b) expect_quantized<256>(x.data() + 256 * b, k[b].d, k[b].q, k[b].sum, b);
  EXPECT_EQ(k[3].d, 0.0f);
  EXPECT_EQ(k[0].q[32 * 5 + 7], 127);  // the outlier sets the scale of its whole 256
  EXPECT_EQ(k[0].d, 1000.0f / 127.0f);
}

TEST(ActivationQuantization, NonFiniteInputGivesNaNScale) {
  for (float bad : {INFINITY, -INFINITY, NAN}) {
    std::vector<float> x(256, 0.5f);
    x[9] = bad;
    for (Isa isa : available_isas()) {
      ActBlock out;
      table(isa)->quantize_block(x.data(), &out);
      EXPECT_TRUE(std::isnan(out.d)) << isa_name(isa);
      for (int8_t v : out.q) EXPECT_EQ(v, 0);
      ActBlockK out_k;
      table(isa)->quantize_block_k(x.data(), &out_k);
      EXPECT_TRUE(std::isnan(out_k.d)) << isa_name(isa);
      for (int8_t v : out_k.q) EXPECT_EQ(v, 0);
      for (int16_t v : out_k.sum) EXPECT_EQ(v, 0);
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
  const auto ref_k = quantize_k_ref(x);
  for (Isa isa : available_isas()) {
    std::vector<ActBlock> got(ref.size());
    for (size_t b = 0; b < got.size(); ++b) table(isa)->quantize_block(x.data() + 32 * b, &got[b]);
    for (size_t b = 0; b < got.size(); ++b) {
      ASSERT_EQ(std::memcmp(&got[b], &ref[b], sizeof(ActBlock)), 0) << isa_name(isa) << " block " << b;
    }
    std::vector<ActBlockK> got_k(ref_k.size());
    std::memset(got_k.data(), 0x5A, got_k.size() * sizeof(ActBlockK));  // the padding must be cleared too
    for (size_t b = 0; b < got_k.size(); ++b) table(isa)->quantize_block_k(x.data() + 256 * b, &got_k[b]);
    for (size_t b = 0; b < got_k.size(); ++b) {
      ASSERT_EQ(std::memcmp(&got_k[b], &ref_k[b], sizeof(ActBlockK)), 0) << isa_name(isa) << " K block " << b;
    }
  }
}

// f32 -> bf16 by its definition: the nearer of the two bf16 values around x (x's upper
// half, and that plus one), the even one on a tie; NaN stays NaN, infinities stay.
TEST(Bf16Activations, RoundToNearestEven) {
  std::mt19937 rng(17);
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.5f, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, FLT_MIN,
                           1e-40f, -1e-42f, std::bit_cast<float>(0x3F808000u), std::bit_cast<float>(0x3F818000u),
                           std::bit_cast<float>(0x3F80FFFFu), std::bit_cast<float>(0x7F7F8000u)};
  for (int i = 0; i < 100000; ++i) xs.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  for (float x : xs) {
    const uint16_t got = f32_to_bf16(x);
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(got)));
      continue;
    }
    const uint32_t bits = std::bit_cast<uint32_t>(x);
    const auto lo = static_cast<uint16_t>(bits >> 16);
    const auto hi = static_cast<uint16_t>(lo + 1);  // the next value away from zero (or inf)
    const double d_lo = std::fabs(double{x} - bf16_to_f32(lo));
    const double d_hi = std::isinf(bf16_to_f32(hi)) && !std::isinf(x)
                            ? std::ldexp(1.0, 128) - std::fabs(double{x})  // 2^128: rounding up overflows
                            : std::fabs(double{x} - bf16_to_f32(hi));
    const uint16_t want = (bits & 0xFFFFu) == 0 ? lo : d_lo < d_hi ? lo : d_hi < d_lo ? hi : (lo & 1u) ? hi : lo;
    ASSERT_EQ(got, want) << std::hexfloat << x;
  }
  // The activation rows are the same conversion, 32 per block; a row that is not whole
  // blocks writes nothing.
  std::vector<float> x(64 * 3);
  for (auto& v : x) v = std::bit_cast<float>(static_cast<uint32_t>(rng()) & 0xBFFFFFFFu);  // no NaN / inf
  std::vector<ActBF16> q(6);
  quantize_activations(x.data(), 3, 64, q.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(q[i / 32].q[i % 32], f32_to_bf16(x[i])) << i;
  std::vector<ActBF16> untouched(2);
  std::memset(untouched.data(), 0x5A, sizeof(ActBF16) * 2);
  quantize_activations(x.data(), 1, 40, untouched.data());
  for (const ActBF16& b : untouched) {
    for (uint16_t v : b.q) EXPECT_EQ(v, 0x5A5A);
  }
}

// BF16 weights read bf16 activations on every instruction set (vdpbf16ps where the CPU
// has AVX-512 BF16): the products of bf16 values are exact, so every kernel is within
// float rounding of the exact sum; four tokens at once give the one-token bits.
TEST(Bf16Activations, EveryKernelMatchesTheExactSum) {
  std::mt19937 rng(23);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (Isa isa : available_isas()) {
    const Kernels* k = kernels(id(GgmlType::BF16), isa);
    ASSERT_NE(k, nullptr);
    ASSERT_EQ(k->act, ActFormat::kBF16) << isa_name(isa);
    ASSERT_NE(k->dot_q8, nullptr);
    for (int64_t n : {32, 96, 2048, 14336}) {
      std::vector<uint16_t> w(static_cast<size_t>(n));
      std::vector<float> x(static_cast<size_t>(n) * 4);
      for (auto& v : w) v = f32_to_bf16(normal(rng));
      for (auto& v : x) v = normal(rng);
      std::vector<ActBF16> xq(static_cast<size_t>(n / 32) * 4);
      quantize_activations(x.data(), 4, n, xq.data());
      float four[4];
      k->dot_q8_x4(w.data(), xq.data(), n / 32, n, four);
      for (int t = 0; t < 4; ++t) {
        const ActBF16* xt = xq.data() + t * (n / 32);
        double exact = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double p = double{bf16_to_f32(w[static_cast<size_t>(i)])} * bf16_to_f32(xt[i / 32].q[i % 32]);
          exact += p;
          mag += std::fabs(p);
        }
        const float got = k->dot_q8(w.data(), xt, n);
        EXPECT_NEAR(got, exact, 2e-6 * mag) << isa_name(isa) << " n=" << n;
        EXPECT_NEAR(detail::dot_bf16_bf16_ref(w.data(), xt, n), exact, 2e-6 * mag) << "reference n=" << n;
        EXPECT_EQ(four[t], got) << isa_name(isa) << " n=" << n << " token " << t;
      }
    }
  }
}

class Int8PerType : public ::testing::TestWithParam<GgmlType> {};

// sum_i dequant(w)[i] * d_j * a[i] in double, and the bound on how far the int8 dot may
// be from the f32 dot: sum_i |w[i]| * d_j / 2.
struct Exact {
  double value = 0, magnitude = 0, quant_bound = 0, f32_dot = 0;
};
Exact exact_dot(const std::vector<float>& w, const std::vector<float>& x, const QuantRow& xq, ActFormat f) {
  Exact e;
  for (size_t i = 0; i < w.size(); ++i) {
    const double xi = xq.value(f, i);
    e.value += double{w[i]} * xi;
    e.magnitude += std::fabs(double{w[i]} * xi);
    e.quant_bound += std::fabs(double{w[i]}) * xq.scale(f, i) * 0.5;
    e.f32_dot += double{w[i]} * x[i];
  }
  return e;
}

// Every scalar int8 reference with the activation format it reads.
template <typename Act, float (*F)(const void*, const Act*, int64_t)>
float as_ref(const void* row, const void* x, int64_t n) {
  return F(row, static_cast<const Act*>(x), n);
}
struct RefOf {
  GgmlType type;
  ActFormat act;
  float (*ref)(const void*, const void*, int64_t);
};
constexpr ActFormat k32 = ActFormat::kBlock32, k256 = ActFormat::kBlock256;
const RefOf kRefs[] = {
    {GgmlType::Q8_0, k32, as_ref<ActBlock, detail::dot_q8_q8_0_ref>},
    {GgmlType::Q4_0, k32, as_ref<ActBlock, detail::dot_q8_q4_0_ref>},
    {GgmlType::Q4_1, k32, as_ref<ActBlock, detail::dot_q8_q4_1_ref>},
    {GgmlType::Q5_0, k32, as_ref<ActBlock, detail::dot_q8_q5_0_ref>},
    {GgmlType::Q5_1, k32, as_ref<ActBlock, detail::dot_q8_q5_1_ref>},
    {GgmlType::IQ4_NL, k32, as_ref<ActBlock, detail::dot_q8_iq4_nl_ref>},
    {GgmlType::Q2_K, k256, as_ref<ActBlockK, detail::dot_q8k_q2_k_ref>},
    {GgmlType::Q3_K, k256, as_ref<ActBlockK, detail::dot_q8k_q3_k_ref>},
    {GgmlType::Q4_K, k256, as_ref<ActBlockK, detail::dot_q8k_q4_k_ref>},
    {GgmlType::Q5_K, k256, as_ref<ActBlockK, detail::dot_q8k_q5_k_ref>},
    {GgmlType::Q6_K, k256, as_ref<ActBlockK, detail::dot_q8k_q6_k_ref>},
    {GgmlType::IQ4_XS, k256, as_ref<ActBlockK, detail::dot_q8k_iq4_xs_ref>},
};

TEST_P(Int8PerType, ReferenceMatchesDequantizedWeightsAndQuantizedActivations) {
  const GgmlType t = GetParam();
  const RefOf* ref = nullptr;
  for (const RefOf& r : kRefs) {
    if (r.type == t) ref = &r;
  }
  ASSERT_NE(ref, nullptr);
  const Kernels* scalar = kernels(id(t), Isa::kScalar);
  if (scalar->dot_q8 != nullptr) {
    EXPECT_EQ(scalar->act, ref->act) << name(t);
  } else {
    EXPECT_EQ(scalar->act, ActFormat::kNone) << name(t);
  }
  std::mt19937 rng(99 + id(t));
  for (int64_t n : {256, 1024, 4096}) {
    const Case c = random_case(t, 6, n, rng);
    const void* xin = c.xq.in(ref->act);
    std::vector<float> w(static_cast<size_t>(n));
    for (int64_t r = 0; r < c.n_rows; ++r) {
      const uint8_t* row = c.row(r);
      scalar->dequantize(row, w.data(), n);
      const Exact e = exact_dot(w, c.x, c.xq, ref->act);
      const float got = ref->ref(row, xin, n);
      EXPECT_NEAR(got, e.value, 1e-5 * e.magnitude + 1e-30) << name(t) << " n=" << n << " row " << r;
      EXPECT_LE(std::fabs(double{got} - e.f32_dot), e.quant_bound * 1.001 + 1e-5 * e.magnitude)
          << name(t) << " n=" << n << " row " << r;
      if (scalar->dot_q8 != nullptr) {
        EXPECT_EQ(scalar->dot_q8(row, xin, n), got);
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
    // Which types take the int8 path, and in which format, must not depend on the
    // instruction set.
    ASSERT_EQ(k->dot_q8 == nullptr, scalar->dot_q8 == nullptr) << name(t) << " " << isa_name(isa);
    ASSERT_EQ(k->act, scalar->act) << name(t) << " " << isa_name(isa);
    ASSERT_EQ(k->dot_q8_x4 == nullptr, k->dot_q8 == nullptr) << name(t) << " " << isa_name(isa);
    for (int64_t n : {256, 2048, 14336}) {
      const Case c = random_case(t, 4, n, rng);
      const auto& x = c.x;
      const void* xin = c.xq.in(k->act);
      std::vector<float> w(static_cast<size_t>(n));
      for (int64_t r = 0; r < c.n_rows; ++r) {
        const uint8_t* row = c.row(r);
        scalar->dequantize(row, w.data(), n);
        double mag = 0, mag_f = 0;
        for (int64_t i = 0; i < n; ++i) {
          if (k->dot_q8 != nullptr) mag += std::fabs(double{w[i]} * c.xq.value(k->act, static_cast<size_t>(i)));
          mag_f += std::fabs(double{w[i]} * x[i]);
        }
        if (k->dot_q8 != nullptr) {
          const float got = k->dot_q8(row, xin, n);
          EXPECT_NEAR(got, scalar->dot_q8(row, xin, n), 2e-6 * mag + 1e-30)
              << name(t) << " " << isa_name(isa) << " n=" << n;
          // Four tokens at once: each result has exactly the bits of the one-token kernel.
          std::vector<float> x4(static_cast<size_t>(n) * 4);
          for (int tok = 0; tok < 4; ++tok) {
            for (int64_t i = 0; i < n; ++i) x4[tok * n + i] = x[(i * (tok + 3)) % n] * static_cast<float>(tok + 1);
          }
          const QuantRow four(x4);
          const int64_t stride = n / (k->act == ActFormat::kBlock256 ? 256 : 32);  // blocks per token
          const size_t block_bytes = k->act == ActFormat::kBlock256 ? sizeof(ActBlockK) : sizeof(ActBlock);
          float out[4];
          k->dot_q8_x4(row, four.in(k->act), stride, n, out);
          for (int tok = 0; tok < 4; ++tok) {
            const void* one_in = static_cast<const uint8_t*>(four.in(k->act)) + tok * stride * block_bytes;
            EXPECT_EQ(out[tok], k->dot_q8(row, one_in, n)) << name(t) << " " << isa_name(isa) << " token " << tok;
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
        k->attn_scores(q.data(), 0, 1, keys.data(), stride, n_keys, dim, 0.125f, got.data(), 0);
        detail::attn_scores_ref(q.data(), 0, 1, keys.data(), stride, n_keys, dim, 0.125f, want.data(), 0);
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
        // Added to out; and split into two calls over consecutive keys, the same bits.
        std::vector<float> out(static_cast<size_t>(dim), 0.5f), out_ref(out.size(), 0.5f), out_split(out.size(), 0.5f);
        k->attn_values(p.data(), 0, 1, v.data(), stride, n_keys, dim, out.data(), 0);
        detail::attn_values_ref(p.data(), 0, 1, v.data(), stride, n_keys, dim, out_ref.data(), 0);
        const int64_t half = n_keys / 2;
        k->attn_values(p.data(), 0, 1, v.data(), stride, half, dim, out_split.data(), 0);
        k->attn_values(p.data() + half, 0, 1, v.data() + half * stride, stride, n_keys - half, dim, out_split.data(), 0);
        for (int64_t d = 0; d < dim; ++d) {
          double exact = 0.5;
          for (int64_t j = 0; j < n_keys; ++j) exact += double{p[j]} * v[j * stride + d];
          EXPECT_NEAR(out_ref[d], exact, 1e-5) << "reference d " << d;
          EXPECT_NEAR(out[d], out_ref[d], 1e-5) << isa_name(isa) << " d " << d;
          EXPECT_EQ(out_split[d], out[d]) << isa_name(isa) << " d " << d;
        }
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

// The row maximum of the softmax: exactly the largest element, wherever it sits (vector
// body or tail), for every length, with -inf entries and all-negative rows.
TEST(AttentionKernels, MaxValueIsTheLargestElement) {
  std::mt19937 rng(5);
  for (Isa isa : available_isas()) {
    const detail::IsaKernels* k = table(isa);
    EXPECT_EQ(k->max_value(nullptr, 0), -INFINITY) << isa_name(isa);
    for (int64_t n = 1; n <= 40; ++n) {
      for (int64_t at = 0; at < n; ++at) {
        auto x = random_floats(n, rng);
        for (auto& v : x) v = -std::fabs(v) - 1.0f;  // all negative
        if (n > 2) x[static_cast<size_t>((at + 1) % n)] = -INFINITY;
        x[static_cast<size_t>(at)] = -0.5f;
        EXPECT_EQ(k->max_value(x.data(), n), -0.5f) << isa_name(isa) << " n " << n << " at " << at;
        EXPECT_EQ(k->max_value(x.data(), n), *std::max_element(x.begin(), x.end()));
      }
    }
    const auto big = random_floats(1030, rng);
    EXPECT_EQ(k->max_value(big.data(), 1030), *std::max_element(big.begin(), big.end())) << isa_name(isa);
  }
}

// Several queries against the same keys (the heads of a KV head): each query's scores and
// value sums have exactly the bits of the one-query call, for any number of queries
// (the kernels take 4 or 2 at a time, then the rest one by one).
TEST(AttentionKernels, QueriesTogetherGiveTheBitsOfOneAtATime) {
  std::mt19937 rng(22);
  for (Isa isa : available_isas()) {
    const detail::IsaKernels* k = table(isa);
    for (int64_t dim : {64, 128, 80, 7}) {
      for (int64_t n_q : {1, 2, 3, 4, 5, 7, 8}) {
        const int64_t n_keys = 37, stride = dim * 2, q_stride = dim + 3, out_stride = n_keys + 5;
        const auto q = random_floats(q_stride * n_q, rng), keys = random_floats(stride * n_keys, rng);
        std::vector<float> together(static_cast<size_t>(out_stride * n_q), -1.0f), alone(together.size(), -1.0f);
        k->attn_scores(q.data(), q_stride, n_q, keys.data(), stride, n_keys, dim, 0.125f, together.data(), out_stride);
        for (int64_t i = 0; i < n_q; ++i) {
          k->attn_scores(q.data() + i * q_stride, 0, 1, keys.data(), stride, n_keys, dim, 0.125f,
                         alone.data() + i * out_stride, 0);
        }
        ASSERT_EQ(together, alone) << isa_name(isa) << " scores, dim " << dim << ", " << n_q << " queries";
        const auto p = random_floats(out_stride * n_q, rng), v = random_floats(stride * n_keys, rng);
        const int64_t o_stride = dim + 1;
        std::vector<float> out_together(static_cast<size_t>(o_stride * n_q), 0.25f), out_alone(out_together);
        k->attn_values(p.data(), out_stride, n_q, v.data(), stride, n_keys, dim, out_together.data(), o_stride);
        for (int64_t i = 0; i < n_q; ++i) {
          k->attn_values(p.data() + i * out_stride, 0, 1, v.data(), stride, n_keys, dim, out_alone.data() + i * o_stride, 0);
        }
        ASSERT_EQ(out_together, out_alone) << isa_name(isa) << " values, dim " << dim << ", " << n_q << " queries";
      }
    }
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

TEST(DenseKernels, RmsNormMatchesTheFormula) {
  std::mt19937 rng(12);
  for (int64_t n : {1, 7, 8, 64, 100, 896, 4096}) {
    auto x = random_floats(n, rng), w = random_floats(n, rng);
    for (auto& v : x) v *= 30.0f;
    double mean_sq = 0;
    for (float v : x) mean_sq += double{v} * v;
    mean_sq /= static_cast<double>(n);
    for (Isa isa : available_isas()) {
      std::vector<float> y(static_cast<size_t>(n));
      table(isa)->rms_norm(x.data(), w.data(), n, 1e-5f, y.data());
      for (int64_t i = 0; i < n; ++i) {
        const double want = x[i] / std::sqrt(mean_sq + 1e-5) * w[i];
        EXPECT_NEAR(y[i], want, 1e-6 * std::fabs(want) + 1e-30) << isa_name(isa) << " n=" << n << " i=" << i;
      }
      // In place (y = x), as the q / k norms use it: the same values.
      auto in_place = x;
      table(isa)->rms_norm(in_place.data(), w.data(), n, 1e-5f, in_place.data());
      EXPECT_EQ(in_place, y) << isa_name(isa);
    }
  }
}

TEST(DenseKernels, RopeIsTheRotationWithTheReferenceBits) {
  std::mt19937 rng(13);
  for (bool neox : {false, true}) {
    for (int64_t n_rot : {2, 6, 8, 16, 64, 80, 128}) {
      const auto x = random_floats(n_rot + 5, rng);  // 5 values past n_rot must stay untouched
      std::vector<float> cos(static_cast<size_t>(n_rot / 2)), sin(cos.size());
      for (size_t i = 0; i < cos.size(); ++i) {
        const double theta = 0.37 * static_cast<double>(i + 1) * (neox ? 1.0 : 2.0);
        cos[i] = static_cast<float>(std::cos(theta));
        sin[i] = static_cast<float>(std::sin(theta));
      }
      auto want = x;
      detail::rope_ref(want.data(), n_rot, neox, cos.data(), sin.data());
      for (int64_t i = 0; i < n_rot / 2; ++i) {  // the reference is the rotation of each pair
        const int64_t a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
        EXPECT_NEAR(want[a], double{x[a]} * cos[i] - double{x[b]} * sin[i], 1e-6);
        EXPECT_NEAR(want[b], double{x[a]} * sin[i] + double{x[b]} * cos[i], 1e-6);
      }
      for (Isa isa : available_isas()) {
        auto got = x;
        table(isa)->rope(got.data(), n_rot, neox, cos.data(), sin.data());
        EXPECT_EQ(got, want) << isa_name(isa) << (neox ? " neox" : " norm") << " n_rot=" << n_rot;
      }
    }
  }
}

TEST(DenseKernels, F16RowIsF32ToF16OnEveryInstructionSet) {
  // Edge values (zeros, subnormal boundaries and ties, the largest half, overflow to inf,
  // infinities, NaNs with payloads), then random bit patterns and probabilities.
  std::vector<uint32_t> bits = {0x00000000, 0x80000000, 0x33000000, 0x33000001, 0x33800000, 0x387FC000,
                                0x387FE000, 0x38800000, 0x3F800000, 0x3F801000, 0x3F803000, 0x477FE000,
                                0x477FEFFF, 0x477FF000, 0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000,
                                0x7F800001, 0x7FBFFFFF, 0xFFC12345, 0x00000001, 0x807FFFFF};
  std::mt19937 rng(11);
  for (int i = 0; i < 4000; ++i) bits.push_back(static_cast<uint32_t>(rng()));
  std::uniform_real_distribution<float> prob(0.0f, 1.0f);
  for (int i = 0; i < 1000; ++i) bits.push_back(std::bit_cast<uint32_t>(prob(rng)));
  std::vector<float> x(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) x[i] = std::bit_cast<float>(bits[i]);
  std::vector<uint16_t> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = f32_to_f16(x[i]);
  for (Isa isa : available_isas()) {
    for (int64_t offset : {0, 1, 5}) {  // unaligned input and output, and tails
      std::vector<uint8_t> out(2 * x.size() + 1, 0xAB);
      const int64_t n = static_cast<int64_t>(x.size()) - offset;
      table(isa)->f32_to_f16_row(x.data() + offset, n, out.data() + 1);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, out.data() + 1 + 2 * i, 2);
        ASSERT_EQ(h, want[static_cast<size_t>(i + offset)])
            << isa_name(isa) << std::hex << " bits 0x" << bits[static_cast<size_t>(i + offset)];
      }
      ASSERT_EQ(out[0], 0xAB);
      for (size_t i = static_cast<size_t>(1 + 2 * n); i < out.size(); ++i) ASSERT_EQ(out[i], 0xAB);
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
    std::vector<ActBlock> x32(static_cast<size_t>(n_tokens * n_cols / 32));
    std::vector<ActBlockK> x256(static_cast<size_t>(n_tokens * n_cols / 256));
    quantize_activations(x.data(), n_tokens, n_cols, x32.data());
    quantize_activations(x.data(), n_tokens, n_cols, x256.data());
    const Kernels* k = kernels(id(t));
    // Token tok's activations in the format of this type.
    const auto token = [&](int64_t tok) -> const void* {
      return k->act == ActFormat::kBlock256 ? static_cast<const void*>(x256.data() + tok * (n_cols / 256))
                                            : x32.data() + tok * (n_cols / 32);
    };
    std::vector<float> y(static_cast<size_t>(n_tokens * n_rows), -1.0f);
    matmul_rows_q8(w, QuantizedActs{x32.data(), x256.data()}, n_tokens, y.data(), 3, 141);
    for (int64_t tok = 0; tok < n_tokens; ++tok) {
      for (int64_t r = 0; r < n_rows; ++r) {
        const float want = (r >= 3 && r < 141) ? k->dot_q8(rows.data() + r * w.row_bytes, token(tok), n_cols) : -1.0f;
        ASSERT_EQ(y[tok * n_rows + r], want) << name(t) << " token " << tok << " row " << r;
      }
    }
    // One token at a time gives the same bits as the batch.
    std::vector<float> y1(static_cast<size_t>(n_rows));
    matmul_rows_q8(w, QuantizedActs{x32.data() + 2 * (n_cols / 32), x256.data() + 2 * (n_cols / 256)}, 1, y1.data(),
                   0, n_rows);
    for (int64_t r = 3; r < 141; ++r) ASSERT_EQ(y1[r], y[2 * n_rows + r]);
    // Without the format this type reads, nothing is written.
    std::vector<float> y0(static_cast<size_t>(n_rows), -2.0f);
    const QuantizedActs missing = k->act == ActFormat::kBlock256 ? QuantizedActs{x32.data(), nullptr}
                                                                 : QuantizedActs{nullptr, x256.data()};
    matmul_rows_q8(w, missing, 1, y0.data(), 0, n_rows);
    for (float v : y0) ASSERT_EQ(v, -2.0f);
  }
}

}  // namespace
}  // namespace attnscope::quant
