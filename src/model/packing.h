// Repacking a model's weights for the int8 GEMM (quant.h: pack_panels).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "attnscope/gguf.h"
#include "attnscope/model.h"

namespace attnscope::model {

struct PackedWeights {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  ModelWeights weights;                   // the model's, with Matrix::packed set where packable
  std::unique_ptr<uint8_t, Free> storage;  // every packed matrix, 64-byte aligned
  uint64_t bytes = 0;
};

// Packs every packable matrix that the forward pass multiplies with (attention and
// feed-forward projections, the output), largest first, on n_threads threads, and
// releases each one's pages of `file` once done. token_embd keeps its rows (looked up,
// not multiplied); a tied output gets its own packed copy.
std::unique_ptr<PackedWeights> pack_weights(const ModelWeights& w, const gguf::File& file, int32_t n_threads);

}  // namespace attnscope::model
