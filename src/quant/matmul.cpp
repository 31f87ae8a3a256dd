// matmul_rows / matmul_rows_q8: y[t, r] = dot(w row r, x[t, :]) for a range of rows.
//
// f32 activations: one token walks the row block by block (Kernels::dot); several
// tokens dequantize the row once into a per-thread buffer (F32 rows are used in place
// when aligned) and dot it with every token. Both accumulate in the same order
// (kernels_impl.h, kernels_x86.inc), so y[t, r] is bit-identical whatever n_tokens is.
//
// Quantized activations: packed Q8_0 weights (Matrix::packed) run the panel GEMM of
// kernels_x86_packed.inc; any other weights Kernels::dot_q8 per (row, token), rows in
// tiles so that the tile's weights stay in cache while every token passes over them.
// Either way each result is computed by the same operations whatever n_tokens is.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/quant.h"
#include "quant/kernels_impl.h"
#include "quant/q8_impl.h"

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

  const auto dot_dense = detail::active_kernels().dot_dense;
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
      y[t * w.n_rows + r] = dot_dense(wr, x + t * n_cols, n_cols);
    }
  }
}

namespace {

// The panel GEMM over rows [row_begin, row_end): whole panels inside the range write
// straight into y; a panel cut by the range or by n_rows goes through a scratch tile
// and only its rows in range are copied.
void matmul_packed(const Matrix& w, const ActBlock* x, int64_t n_tokens, float* y, int64_t row_begin,
                   int64_t row_end) {
  const auto gemm = detail::active_kernels().gemm_packed;
  const int64_t nb = w.n_cols / 32;
  const auto* packed = static_cast<const uint8_t*>(w.packed);
  const auto panel_at = [&](int64_t p) { return packed + p * nb * kPanelBlockBytes; };
  row_end = std::min(row_end, w.n_rows);
  const int64_t first = (row_begin + kPanelRows - 1) / kPanelRows;  // first whole panel
  const int64_t last = row_end / kPanelRows;                           // one past the last whole panel
  if (first < last) gemm(panel_at(first), last - first, x, nb, n_tokens, y + first * kPanelRows, w.n_rows);
  // (n_tokens, 16) one panel's outputs; grown once per thread, never shrunk.
  thread_local std::vector<float> scratch;
  const auto partial = [&](int64_t p) {
    const int64_t lo = std::max(row_begin, p * kPanelRows), hi = std::min(row_end, (p + 1) * kPanelRows);
    if (lo >= hi) return;
    if (scratch.size() < static_cast<size_t>(n_tokens * kPanelRows)) {
      scratch.resize(static_cast<size_t>(n_tokens * kPanelRows));
    }
    gemm(panel_at(p), 1, x, nb, n_tokens, scratch.data(), kPanelRows);
    for (int64_t t = 0; t < n_tokens; ++t) {
      std::copy(scratch.begin() + t * kPanelRows + (lo - p * kPanelRows),
                scratch.begin() + t * kPanelRows + (hi - p * kPanelRows), y + t * w.n_rows + lo);
    }
  };
  if (first > last) {  // the range lies inside one panel
    partial(last);
    return;
  }
  if (row_begin < first * kPanelRows) partial(first - 1);
  if (last * kPanelRows < row_end) partial(last);
}

}  // namespace

void matmul_rows_q8(const Matrix& w, const QuantizedActs& xq, int64_t n_tokens, float* y, int64_t row_begin,
                    int64_t row_end) {
  if (w.packed != nullptr) {
    if (xq.b32 != nullptr && packable(w) && n_tokens > 0 && row_begin < row_end) {
      matmul_packed(w, xq.b32, n_tokens, y, row_begin, row_end);
    }
    return;
  }
  const Kernels* k = kernels(w.type);
  if (k == nullptr || k->dot_q8 == nullptr || n_tokens <= 0 || row_begin >= row_end) return;
  const int64_t block = ggml_type_info(w.type)->block_size;
  // The activations of token t start x_stride blocks of act_bytes after token t - 1's.
  const void* x = nullptr;
  int64_t act_n = 0, act_bytes = 0;
  if (k->act == ActFormat::kBlock32) {
    x = xq.b32;
    act_n = 32;
    act_bytes = sizeof(ActBlock);
  } else if (k->act == ActFormat::kBlock256) {
    x = xq.b256;
    act_n = 256;
    act_bytes = sizeof(ActBlockK);
  } else if (k->act == ActFormat::kBF16) {
    x = xq.bf16;
    act_n = 32;
    act_bytes = sizeof(ActBF16);
  }
  if (x == nullptr || w.n_cols % block != 0 || w.n_cols % act_n != 0) return;
  const int64_t x_stride = w.n_cols / act_n;
  const auto x_at = [&](int64_t t) { return static_cast<const uint8_t*>(x) + t * x_stride * act_bytes; };
  const auto* base = static_cast<const uint8_t*>(w.data);
  const auto row_stride = static_cast<int64_t>(w.row_bytes);
  // About 32 KB of weights per tile: they stay in L1/L2 while the tokens stream by.
  const int64_t tile = std::clamp<int64_t>(32768 / std::max<int64_t>(row_stride, 1), 1, 64);
  for (int64_t r0 = row_begin; r0 < row_end; r0 += tile) {
    const int64_t r1 = std::min(r0 + tile, row_end);
    int64_t t = 0;
    for (; t + 4 <= n_tokens; t += 4) {  // four tokens per pass over a row
      for (int64_t r = r0; r < r1; ++r) {
        float out[4];
        k->dot_q8_x4(base + r * row_stride, x_at(t), x_stride, w.n_cols, out);
        for (int64_t i = 0; i < 4; ++i) y[(t + i) * w.n_rows + r] = out[i];
      }
    }
    for (; t < n_tokens; ++t) {
      float* yt = y + t * w.n_rows;
      for (int64_t r = r0; r < r1; ++r) yt[r] = k->dot_q8(base + r * row_stride, x_at(t), w.n_cols);
    }
  }
}

}  // namespace attnscope::quant
