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
  if (todo.empty()) return out;

  // One buffer; each matrix at a 64-byte aligned offset.
  std::vector<uint64_t> offsets;
  for (const quant::Matrix* m : todo) {
    offsets.push_back(out->bytes);
    out->bytes += (quant::packed_bytes(*m) + 63) / 64 * 64;
  }
  out->storage.reset(static_cast<uint8_t*>(std::aligned_alloc(64, out->bytes)));
  if (!out->storage) {  // no memory for the copies: compute from the mapped rows
    out->bytes = 0;
    return out;
  }
  for (size_t i = 0; i < todo.size(); ++i) todo[i]->packed = out->storage.get() + offsets[i];

  // Whole matrices per thread, largest first: each thread's mapped pages are released
  // as soon as its matrix is packed, so at most n_threads matrices are resident twice.
  std::vector<size_t> order(todo.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return quant::packed_bytes(*todo[a]) > quant::packed_bytes(*todo[b]);
  });
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < order.size(); i = next++) {
      quant::Matrix& m = *todo[order[i]];
      quant::pack_panels(m, 0, quant::panel_count(m), const_cast<void*>(m.packed));
      file.release_pages(m.data, static_cast<uint64_t>(m.n_rows) * m.row_bytes);
    }
  };
  std::vector<std::jthread> threads;
  for (int32_t t = 1; t < std::max(n_threads, 1); ++t) threads.emplace_back(work);
  work();
  return out;
}

}  // namespace attnscope::model
