// The kernel tables (one per instruction set, one row per computable weight type) and
// the run-time choice between them.
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "attnscope/quant.h"
#include "quant/kernels_impl.h"
#include "quant/q8_impl.h"

namespace attnscope::quant {
namespace detail {

float dot_dense_ref(const float* a, const float* b, int64_t n) { return dot_dense(a, b, n); }

void axpy_ref(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void attn_scores_ref(const float* q, int64_t q_stride, int64_t n_q, const float* k, int64_t k_stride, int64_t n_keys,
                     int64_t dim, float scale, float* out, int64_t out_stride) {
  for (int64_t i = 0; i < n_q; ++i) {
    for (int64_t j = 0; j < n_keys; ++j) out[i * out_stride + j] = dot_dense(q + i * q_stride, k + j * k_stride, dim) * scale;
  }
}

float max_value_ref(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

float exp_shifted_ref(float* x, int64_t n, float max) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  return static_cast<float>(sum);
}

void swiglu_ref(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void rms_norm_ref(const float* x, const float* w, int64_t n, float eps, float* y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void f32_to_f16_row_ref(const float* x, int64_t n, void* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = f32_to_f16(x[i]);
    std::memcpy(static_cast<uint8_t*>(out) + 2 * i, &h, 2);
  }
}

void rope_ref(float* x, int64_t n_rot, bool neox, const float* cos, const float* sin) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * cos[i] - x1 * sin[i];
    x[b] = x0 * sin[i] + x1 * cos[i];
  }
}

void attn_values_ref(const float* p, int64_t p_stride, int64_t n_q, const float* v, int64_t v_stride, int64_t n_keys,
                     int64_t dim, float* out, int64_t out_stride) {
  for (int64_t i = 0; i < n_q; ++i) {
    for (int64_t j = 0; j < n_keys; ++j) axpy_ref(p[i * p_stride + j], v + j * v_stride, out + i * out_stride, dim);
  }
}

namespace {
// Kernels::dot_q8 / dot_q8_x4 from a scalar reference of either activation format.
template <typename Act, float (*Dot)(const void*, const Act*, int64_t)>
float one(const void* row, const void* x, int64_t n) {
  return Dot(row, static_cast<const Act*>(x), n);
}
template <typename Act, float (*Dot)(const void*, const Act*, int64_t)>
void four(const void* row, const void* x, int64_t x_stride, int64_t n, float* out) {
  for (int t = 0; t < 4; ++t) out[t] = Dot(row, static_cast<const Act*>(x) + t * x_stride, n);
}
constexpr ActFormat kNo = ActFormat::kNone, k32 = ActFormat::kBlock32, k256 = ActFormat::kBlock256,
                    kBf = ActFormat::kBF16;
}  // namespace

const IsaKernels& scalar_kernels() {
  static const IsaKernels table = {
      {{
          {GgmlType::F32, dequantize_f32, dot_f32, kNo, nullptr, nullptr},
          {GgmlType::F16, dequantize_f16, dot_f16, kNo, nullptr, nullptr},
          {GgmlType::BF16, dequantize_bf16, dot_bf16, kBf, one<ActBF16, dot_bf16_bf16_ref>, four<ActBF16, dot_bf16_bf16_ref>},
          {GgmlType::Q8_0, dequantize_q8_0, dot_q8_0, k32, one<ActBlock, dot_q8_q8_0_ref>, four<ActBlock, dot_q8_q8_0_ref>},
          {GgmlType::Q4_0, dequantize_q4_0, dot_q4_0, k32, one<ActBlock, dot_q8_q4_0_ref>, four<ActBlock, dot_q8_q4_0_ref>},
          {GgmlType::Q4_1, dequantize_q4_1, dot_q4_1, k32, one<ActBlock, dot_q8_q4_1_ref>, four<ActBlock, dot_q8_q4_1_ref>},
          {GgmlType::Q5_0, dequantize_q5_0, dot_q5_0, k32, one<ActBlock, dot_q8_q5_0_ref>, four<ActBlock, dot_q8_q5_0_ref>},
          {GgmlType::Q5_1, dequantize_q5_1, dot_q5_1, k32, one<ActBlock, dot_q8_q5_1_ref>, four<ActBlock, dot_q8_q5_1_ref>},
          {GgmlType::Q2_K, dequantize_q2_k, dot_q2_k, k256, one<ActBlockK, dot_q8k_q2_k_ref>, four<ActBlockK, dot_q8k_q2_k_ref>},
          {GgmlType::Q3_K, dequantize_q3_k, dot_q3_k, k256, one<ActBlockK, dot_q8k_q3_k_ref>, four<ActBlockK, dot_q8k_q3_k_ref>},
          {GgmlType::Q4_K, dequantize_q4_k, dot_q4_k, k256, one<ActBlockK, dot_q8k_q4_k_ref>, four<ActBlockK, dot_q8k_q4_k_ref>},
          {GgmlType::Q5_K, dequantize_q5_k, dot_q5_k, k256, one<ActBlockK, dot_q8k_q5_k_ref>, four<ActBlockK, dot_q8k_q5_k_ref>},
          {GgmlType::Q6_K, dequantize_q6_k, dot_q6_k, k256, one<ActBlockK, dot_q8k_q6_k_ref>, four<ActBlockK, dot_q8k_q6_k_ref>},
          {GgmlType::IQ4_NL, dequantize_iq4_nl, dot_iq4_nl, k32, one<ActBlock, dot_q8_iq4_nl_ref>, four<ActBlock, dot_q8_iq4_nl_ref>},
          {GgmlType::IQ4_XS, dequantize_iq4_xs, dot_iq4_xs, k256, one<ActBlockK, dot_q8k_iq4_xs_ref>, four<ActBlockK, dot_q8k_iq4_xs_ref>},
      }},
      dot_dense_ref,
      axpy_ref,
      quantize_act_block_ref,
      quantize_act_block_k_ref,
      attn_scores_ref,
      max_value_ref,
      exp_shifted_ref,
      attn_values_ref,
      swiglu_ref,
      rms_norm_ref,
      rope_ref,
      f32_to_f16_row_ref,
      gemm_packed_ref,
  };
  return table;
}

namespace {
const IsaKernels* table_for(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) return nullptr;
  switch (isa) {
    case Isa::kScalar:
      return &scalar_kernels();
    case Isa::kAvx2:
      return avx2_kernels();
    case Isa::kAvx512:
      return avx512_kernels();
  }
  return nullptr;
}
}  // namespace

const IsaKernels& active_kernels() {
  static const IsaKernels* table = table_for(cpu_isa());
  return table != nullptr ? *table : scalar_kernels();
}

}  // namespace detail

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

Isa detected_isa() {
  static const Isa isa = [] {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      __builtin_cpu_supports("f16c");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    if (avx512 && detail::avx512_kernels() != nullptr) return Isa::kAvx512;
    if (avx2 && detail::avx2_kernels() != nullptr) return Isa::kAvx2;
#endif
    return Isa::kScalar;
  }();
  return isa;
}

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0;
  }();
  return has;
#else
  return false;
#endif
}

Result<Isa> parse_isa(const std::string& name) {
  Isa isa;
  if (name == "scalar") {
    isa = Isa::kScalar;
  } else if (name == "avx2") {
    isa = Isa::kAvx2;
  } else if (name == "avx512") {
    isa = Isa::kAvx512;
  } else {
    return make_error("ATTNSCOPE_CPU: expected scalar, avx2 or avx512, got '{}'", name);
  }
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
    return make_error("ATTNSCOPE_CPU={}: this CPU supports at most {}", name, isa_name(detected_isa()));
  }
  return isa;
}

Isa cpu_isa() {
  static const Isa isa = [] {
    const char* env = std::getenv("ATTNSCOPE_CPU");
    if (env == nullptr || *env == '\0') return detected_isa();
    auto parsed = parse_isa(env);
    return parsed.ok() ? *parsed : detected_isa();  // the CLI reports a bad value
  }();
  return isa;
}

namespace {
const Kernels* find(const detail::IsaKernels& table, uint32_t type_id) {
  for (const Kernels& k : table.types) {
    if (static_cast<uint32_t>(k.type) == type_id) return &k;
  }
  return nullptr;
}
}  // namespace

const Kernels* kernels(uint32_t type_id, Isa isa) {
  const detail::IsaKernels* table = detail::table_for(isa);
  return table != nullptr ? find(*table, type_id) : nullptr;
}

const Kernels* kernels(uint32_t type_id) { return find(detail::active_kernels(), type_id); }

void f32_to_f16_row(const float* x, int64_t n, void* out) { detail::active_kernels().f32_to_f16_row(x, n, out); }

float dot_f32(const float* a, const float* b, int64_t n) { return detail::active_kernels().dot_dense(a, b, n); }

void axpy_f32(float a, const float* x, float* y, int64_t n) { detail::active_kernels().axpy(a, x, y, n); }

void attention_scores_heads(const float* q, int64_t q_stride, int64_t n_q, const float* k, int64_t k_stride,
                            int64_t n_keys, int64_t dim, float scale, float* out, int64_t out_stride) {
  detail::active_kernels().attn_scores(q, q_stride, n_q, k, k_stride, n_keys, dim, scale, out, out_stride);
}

void swiglu(float* gate, const float* up, int64_t n) { detail::active_kernels().swiglu(gate, up, n); }

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  detail::active_kernels().rms_norm(x, w, n, eps, y);
}

void rope_rotate(float* x, int64_t n_rot, bool neox, const float* cos, const float* sin) {
  detail::active_kernels().rope(x, n_rot, neox, cos, sin);
}

float max_value(const float* x, int64_t n) { return detail::active_kernels().max_value(x, n); }

float exp_shifted(float* x, int64_t n, float max) { return detail::active_kernels().exp_shifted(x, n, max); }

void attention_values_heads(const float* p, int64_t p_stride, int64_t n_q, const float* v, int64_t v_stride,
                            int64_t n_keys, int64_t dim, float* out, int64_t out_stride) {
  detail::active_kernels().attn_values(p, p_stride, n_q, v, v_stride, n_keys, dim, out, out_stride);
}

void quantize_activations(const float* x, int64_t n_tokens, int64_t n_cols, ActBlock* out) {
  const auto quantize = detail::active_kernels().quantize_block;
  const int64_t n_blocks = n_cols / 32;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t b = 0; b < n_blocks; ++b) quantize(x + t * n_cols + 32 * b, out + t * n_blocks + b);
  }
}

// Not dispatched: the rounding is integer arithmetic that the compiler vectorizes, and a
// tiny fraction of the products' cost.
void quantize_activations(const float* x, int64_t n_tokens, int64_t n_cols, ActBF16* out) {
  if (n_cols % 32 != 0) return;
  auto* q = reinterpret_cast<uint16_t*>(out);  // (n_tokens, n_cols): an ActBF16 is 32 values
  for (int64_t i = 0; i < n_tokens * n_cols; ++i) q[i] = detail::f32_to_bf16_inline(x[i]);
}

void quantize_activations(const float* x, int64_t n_tokens, int64_t n_cols, ActBlockK* out) {
  const auto quantize = detail::active_kernels().quantize_block_k;
  const int64_t n_blocks = n_cols / 256;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t b = 0; b < n_blocks; ++b) quantize(x + t * n_cols + 256 * b, out + t * n_blocks + b);
  }
}

}  // namespace attnscope::quant
