// Q8_0 weights packed into 16-row panels for the int8 GEMM (layout in quant.h), and the
// scalar reference of the panel GEMM that the SIMD kernels (kernels_x86_packed.inc) are
// held to bit for bit.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "attnscope/ggml_type.h"
#include "attnscope/quant.h"
#include "quant/blocks.h"
#include "quant/kernels_impl.h"
#include "quant/q8_impl.h"

namespace attnscope::quant {

bool packable(const Matrix& w) {
  return w.type == static_cast<uint32_t>(GgmlType::Q8_0) && w.n_cols > 0 && w.n_cols % 32 == 0 &&
         w.n_rows > 0 && w.row_bytes == static_cast<uint64_t>(w.n_cols / 32) * sizeof(BlockQ8_0);
}

int64_t panel_count(const Matrix& w) { return (w.n_rows + kPanelRows - 1) / kPanelRows; }

uint64_t packed_bytes(const Matrix& w) {
  return static_cast<uint64_t>(panel_count(w)) * static_cast<uint64_t>(w.n_cols / 32) * kPanelBlockBytes;
}

void pack_panels(const Matrix& w, int64_t panel_begin, int64_t panel_end, void* packed) {
  if (!packable(w)) return;
  const int64_t nb = w.n_cols / 32;
  const auto* src = static_cast<const uint8_t*>(w.data);
  for (int64_t p = panel_begin; p < panel_end && p < panel_count(w); ++p) {
    uint8_t* panel = static_cast<uint8_t*>(packed) + p * nb * kPanelBlockBytes;
    uint8_t* scales = panel;                               // (nb, 16) f16
    uint8_t* quants = panel + nb * 2 * kPanelRows;         // (nb, 8, 16, 4) q ^ 0x80
    for (int64_t j = 0; j < kPanelRows; ++j) {
      const int64_t r = p * kPanelRows + j;
      for (int64_t b = 0; b < nb; ++b) {
        BlockQ8_0 blk{};  // padding rows: scale 0, values 0
        if (r < w.n_rows) blk = detail::load_block<BlockQ8_0>(src + r * static_cast<int64_t>(w.row_bytes), b);
        std::memcpy(scales + (b * kPanelRows + j) * 2, &blk.d, 2);
        for (int g = 0; g < 8; ++g) {
          for (int e = 0; e < 4; ++e) {
            quants[((b * 8 + g) * kPanelRows + j) * 4 + e] = static_cast<uint8_t>(blk.qs[4 * g + e]) ^ 0x80u;
          }
        }
      }
    }
  }
}

void dequantize_packed_row(const Matrix& w, int64_t r, float* out) {
  const int64_t nb = w.n_cols / 32;
  const int64_t j = r % kPanelRows;
  const uint8_t* scales = static_cast<const uint8_t*>(w.packed) + (r / kPanelRows) * nb * kPanelBlockBytes;
  const uint8_t* quants = scales + nb * 2 * kPanelRows;
  for (int64_t b = 0; b < nb; ++b) {
    uint16_t h;
    std::memcpy(&h, scales + (b * kPanelRows + j) * 2, 2);
    const float d = detail::f16_to_f32_inline(h);
    for (int i = 0; i < 32; ++i) {
      const auto q = static_cast<int8_t>(quants[((b * 8 + i / 4) * kPanelRows + j) * 4 + i % 4] ^ 0x80u);
      out[b * 32 + i] = static_cast<float>(q) * d;
    }
  }
}

namespace detail {

void gemm_packed_ref(const uint8_t* panels, int64_t n_panels, const ActBlock* x, int64_t nb, int64_t n_tokens,
                     float* y, int64_t y_stride) {
  for (int64_t p = 0; p < n_panels; ++p) {
    const uint8_t* scales = panels + p * nb * kPanelBlockBytes;
    const uint8_t* quants = scales + nb * 2 * kPanelRows;
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t j = 0; j < kPanelRows; ++j) {
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const ActBlock& a = x[t * nb + b];
          int32_t sum = 0;  // exact: |sum| <= 32 * 128 * 127
          for (int g = 0; g < 8; ++g) {
            for (int e = 0; e < 4; ++e) {
              const auto q = static_cast<int8_t>(quants[((b * 8 + g) * kPanelRows + j) * 4 + e] ^ 0x80u);
              sum += int32_t{q} * a.q[4 * g + e];
            }
          }
          uint16_t d;
          std::memcpy(&d, scales + (b * kPanelRows + j) * 2, 2);
          acc = std::fma(static_cast<float>(sum), f16_to_f32_inline(d) * a.d, acc);
        }
        y[t * y_stride + p * kPanelRows + j] = acc;
      }
    }
  }
}

}  // namespace detail
}  // namespace attnscope::quant
