// Internals shared by the kernel tables: the scalar int8 references and the per-ISA
// tables that kernels.cpp dispatches between.
#pragma once

#include <array>
#include <cstdint>

#include "attnscope/quant.h"

namespace attnscope::quant::detail {

// Number of computable weight types (the rows of every table).
inline constexpr int kNumTypes = 15;

// Everything one instruction set provides.
struct IsaKernels {
  std::array<Kernels, kNumTypes> types;  // same order in every table (kernels.cpp)
  float (*dot_dense)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  void (*quantize_block)(const float* x, ActBlock* out);     // 32 activations
  void (*quantize_block_k)(const float* x, ActBlockK* out);  // 256 activations
  // Attention rows of n_q queries against the same keys (quant.h: attention_scores_heads,
  // exp_shifted, attention_values_heads): query i's vector (or probabilities) at q + i * q_stride,
  // its scores (or output) at out + i * out_stride.
  void (*attn_scores)(const float* q, int64_t q_stride, int64_t n_q, const float* k, int64_t k_stride, int64_t n_keys,
                      int64_t dim, float scale, float* out, int64_t out_stride);
  float (*max_value)(const float* x, int64_t n);
  float (*exp_shifted)(float* x, int64_t n, float max);
  void (*attn_values)(const float* p, int64_t p_stride, int64_t n_q, const float* v, int64_t v_stride, int64_t n_keys,
                      int64_t dim, float* out, int64_t out_stride);
  void (*swiglu)(float* gate, const float* up, int64_t n);
  void (*rms_norm)(const float* x, const float* w, int64_t n, float eps, float* y);
  void (*rope)(float* x, int64_t n_rot, bool neox, const float* cos, const float* sin);
  // The packed Q8_0 GEMM (quant.h, pack_panels): y[t * y_stride + 16 p + j] for the
  // n_panels panels at `panels` (nb * kPanelBlockBytes apart) and t < n_tokens (token t's
  // nb ActBlocks at x + t * nb). Writes all 16 rows of every panel.
  void (*f32_to_f16_row)(const float* x, int64_t n, void* out);  // n halves, out unaligned
  void (*gemm_packed)(const uint8_t* panels, int64_t n_panels, const ActBlock* x, int64_t nb, int64_t n_tokens,
                      float* y, int64_t y_stride);
};

const IsaKernels& scalar_kernels();
// nullptr when the build target has no such code (non-x86 hosts).
const IsaKernels* avx2_kernels();
const IsaKernels* avx512_kernels();

// The table of cpu_isa().
const IsaKernels& active_kernels();

// ---- scalar references (dot_q8_ref.cpp, kernels.cpp) ----------------------------------
void quantize_act_block_ref(const float* x, ActBlock* out);
void quantize_act_block_k_ref(const float* x, ActBlockK* out);
float dot_bf16_bf16_ref(const void* row, const ActBF16* x, int64_t n);
float dot_dense_ref(const float* a, const float* b, int64_t n);
void axpy_ref(float a, const float* x, float* y, int64_t n);
void attn_scores_ref(const float* q, int64_t q_stride, int64_t n_q, const float* k, int64_t k_stride, int64_t n_keys,
                     int64_t dim, float scale, float* out, int64_t out_stride);
float max_value_ref(const float* x, int64_t n);
float exp_shifted_ref(float* x, int64_t n, float max);
void swiglu_ref(float* gate, const float* up, int64_t n);
void rms_norm_ref(const float* x, const float* w, int64_t n, float eps, float* y);
void rope_ref(float* x, int64_t n_rot, bool neox, const float* cos, const float* sin);
void f32_to_f16_row_ref(const float* x, int64_t n, void* out);
void gemm_packed_ref(const uint8_t* panels, int64_t n_panels, const ActBlock* x, int64_t nb, int64_t n_tokens,
                     float* y, int64_t y_stride);
void attn_values_ref(const float* p, int64_t p_stride, int64_t n_q, const float* v, int64_t v_stride, int64_t n_keys,
                     int64_t dim, float* out, int64_t out_stride);

#define ATTN_Q8_DECLARE(name) float dot_q8_##name##_ref(const void* row, const ActBlock* x, int64_t n);
ATTN_Q8_DECLARE(q8_0)
ATTN_Q8_DECLARE(q4_0)
ATTN_Q8_DECLARE(q4_1)
ATTN_Q8_DECLARE(q5_0)
ATTN_Q8_DECLARE(q5_1)
ATTN_Q8_DECLARE(iq4_nl)
#undef ATTN_Q8_DECLARE
// The K-quants and IQ4_XS read ActBlockK (256 activations per block).
#define ATTN_Q8K_DECLARE(name) float dot_q8k_##name##_ref(const void* row, const ActBlockK* x, int64_t n);
ATTN_Q8K_DECLARE(q2_k)
ATTN_Q8K_DECLARE(q3_k)
ATTN_Q8K_DECLARE(q4_k)
ATTN_Q8K_DECLARE(q5_k)
ATTN_Q8K_DECLARE(q6_k)
ATTN_Q8K_DECLARE(iq4_xs)
#undef ATTN_Q8K_DECLARE

}  // namespace attnscope::quant::detail
