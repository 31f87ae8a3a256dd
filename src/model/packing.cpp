#include "model/packing.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "attnscope/quant.h"

namespace attnscope::model {

std::unique_ptr<PackedWeights> pack_weights(const ModelWeights& w, const gguf::File& file, int32_t n_threads) {
  auto out = std::make_unique<PackedWeights>();
  out->weights = w;
  std::vector<quant::Matrix*> todo;  // the matrices to pack, in out->weights
  auto add = [&](quant::Matrix& m) {
    if (quant::packable(m)) todo.push_back(&m);
  };
  for (LayerWeights& L : out->weights.layers) {
    for (quant::Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(*m);
  }
  add(out->weights.output);
  const bool tied = out->weights.output.data == out->weights.token_embd.data;
  if (todo.empty()) return out;

  // One buffer; each matrix at a 64-byte aligned offset.
  std::vector<uint64_t> offsets;
  uint64_t bytes = 0;
  for (const quant::Matrix* m : todo) {
    offsets.push_back(bytes);
    bytes += (quant::packed_bytes(*m) + 63) / 64 * 64;
  }
  out->storage.reset(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)));
  if (!out->storage) return out;  // no memory for the copies: compute from the mapped rows
  for (size_t i = 0; i < todo.size(); ++i) todo[i]->packed = out->storage.get() + offsets[i];

  // Pieces of about 4 MB (whole panels) that the threads take in turn; each piece's
  // mapped rows are released as soon as it is packed, so the model is never resident
  // twice (at most a piece per thread).
  struct Piece {
    const quant::Matrix* m;
    uint8_t* packed;  // the matrix's packed buffer
    int64_t panel_begin, panel_end;
  };
  std::vector<Piece> pieces;
  constexpr uint64_t kPieceBytes = 4u << 20;
  for (size_t i = 0; i < todo.size(); ++i) {
    const quant::Matrix* m = todo[i];
    const uint64_t panel_bytes = quant::packed_bytes(*m) / static_cast<uint64_t>(quant::panel_count(*m));
    const auto step = static_cast<int64_t>(std::max<uint64_t>(1, kPieceBytes / panel_bytes));
    for (int64_t p = 0; p < quant::panel_count(*m); p += step) {
      pieces.push_back({m, out->storage.get() + offsets[i], p, std::min(p + step, quant::panel_count(*m))});
    }
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < pieces.size(); i = next++) {
      const Piece& piece = pieces[i];
      const quant::Matrix& m = *piece.m;
      quant::pack_panels(m, piece.panel_begin, piece.panel_end, piece.packed);
      const int64_t row_begin = piece.panel_begin * quant::kPanelRows;
      const int64_t row_end = std::min(piece.panel_end * quant::kPanelRows, m.n_rows);
      file.release_pages(static_cast<const uint8_t*>(m.data) + static_cast<uint64_t>(row_begin) * m.row_bytes,
                         static_cast<uint64_t>(row_end - row_begin) * m.row_bytes);
    }
  };
  {
    std::vector<std::jthread> threads;
    for (int32_t t = 1; t < std::max(n_threads, 1); ++t) threads.emplace_back(work);
    work();
  }
  // A tied embedding's rows were released with the output's: look them up in the panels.
  if (tied) out->weights.token_embd.packed = out->weights.output.packed;
  return out;
}

}  // namespace attnscope::model
