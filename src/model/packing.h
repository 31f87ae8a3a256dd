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
};

// Packs every packable matrix that the forward pass multiplies with (attention and
// feed-forward projections, the output) on n_threads threads, in pieces of about 4 MB
// whose pages of `file` are released as soon as each is packed. token_embd is looked
// up, not multiplied: it keeps its mapped rows, unless the output is tied to it, in
// which case its `packed` points to the output's panels (dequantize_packed_row).
std::unique_ptr<PackedWeights> pack_weights(const ModelWeights& w, const gguf::File& file, int32_t n_threads);

}  // namespace attnscope::model
