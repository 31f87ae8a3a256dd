// Compute kernels for ggml weight types. Each supported type has a packed block
// struct (src/quant/blocks.h, with static_asserts on sizes), a scalar reference
// dequantizer that is bit-exact with ggml, and a dot product against f32 activations.
// The performance work (issue 6) adds SIMD variants behind this same table; tests
// hold them to the scalar reference.
#pragma once

#include <cstdint>

#include "attnscope/ggml_type.h"
#include "attnscope/result.h"

namespace attnscope::quant {

struct Kernels {
  GgmlType type;
  // Dequantizes n elements (a whole number of blocks) starting at src, bit-exactly
  // as ggml does. src needs no alignment; a trailing partial block is ignored.
  void (*dequantize)(const void* src, float* dst, int64_t n);
  // sum_i dequant(row)[i] * x[i] over n elements (a whole number of blocks),
  // accumulated in float in a fixed order (src/quant/kernels_impl.h): deterministic,
  // and the same bits as matmul_rows gives for that row and token.
  float (*dot)(const void* row, const float* x, int64_t n);
};

// Kernels for a type the engine can compute with; nullptr otherwise
// (unknown ids, integer types, and quant formats not implemented yet).
const Kernels* kernels(uint32_t type_id);

// A 2-D weight as GGUF stores it: n_rows rows of n_cols elements (ne[0] = n_cols).
struct Matrix {
  uint32_t type = 0;           // ggml type id; must have kernels()
  const void* data = nullptr;  // (n_rows, row_bytes)
  int64_t n_cols = 0;          // input features
  int64_t n_rows = 0;          // output features
  uint64_t row_bytes = 0;
};

// y[t, r] = dot(w row r, x[t, :]) for t < n_tokens and r in [row_begin, row_end).
// x: (n_tokens, n_cols) row-major; y: (n_tokens, n_rows) row-major.
// Single-threaded; callers split [0, n_rows) across threads. Rows outside the range
// are not touched. Uses a thread_local buffer of n_cols floats for multi-token input.
// Preconditions (checked by callers, e.g. with ggml_row_bytes): kernels(w.type) is
// non-null and n_cols is a whole number of blocks; otherwise nothing is written.
void matmul_rows(const Matrix& w, const float* x, int64_t n_tokens, float* y,
                 int64_t row_begin, int64_t row_end);

// Fills n_elements (whole blocks) of random, well-formed weights of a computable type:
// N(0, scale) floats, or random quants with sane block scales. For benchmark models.
Status fill_random(uint32_t type_id, void* dst, int64_t n_elements, uint64_t seed, float scale);

// IEEE half and bfloat16 conversions (exact, as ggml does them).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even
float bf16_to_f32(uint16_t h);

}  // namespace attnscope::quant
