// matmul_rows: y[t, r] = dot(w row r, x[t, :]) for a range of rows.
//
// One token: Kernels::dot walks the row block by block. Several tokens: the row is
// dequantized once into a per-thread buffer (F32 rows are used in place when
// aligned) and dotted with every token. Both paths accumulate in the order fixed in
// kernels_impl.h, so y[t, r] is bit-identical whatever n_tokens is.
#include <cstdint>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/quant.h"
#include "quant/kernels_impl.h"

namespace attnscope::quant {

void matmul_rows(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t row_begin,
                 int64_t row_end) {
  // Callers validate shapes; a call that breaks the preconditions writes nothing.
  const Kernels* k = kernels(w.type);
  if (k == nullptr || n_tokens <= 0 || row_begin >= row_end) return;
  if (w.n_cols % ggml_type_info(w.type)->block_size != 0) return;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t n_cols = w.n_cols;
  const auto row_stride = static_cast<int64_t>(w.row_bytes);

  if (n_tokens == 1) {
    for (int64_t r = row_begin; r < row_end; ++r) y[r] = k->dot(base + r * row_stride, x, n_cols);
    return;
  }

  // (n_cols) one dequantized row; grown once per thread, never shrunk.
  thread_local std::vector<float> row_buf;
  const bool in_place = w.type == static_cast<uint32_t>(GgmlType::F32);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* src = base + r * row_stride;
    const float* wr = nullptr;
    if (in_place && reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
      wr = reinterpret_cast<const float*>(src);
    } else {
      if (row_buf.size() < static_cast<size_t>(n_cols)) row_buf.resize(static_cast<size_t>(n_cols));
      k->dequantize(src, row_buf.data(), n_cols);
      wr = row_buf.data();
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      y[t * w.n_rows + r] = detail::dot_dense(wr, x + t * n_cols, n_cols);
    }
  }
}

}  // namespace attnscope::quant
