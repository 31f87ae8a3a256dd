// general.architecture = "llama": Llama 1/2/3/3.x, CodeLlama, TinyLlama, SmolLM and
// Mistral-style models. The converter permutes q/k rows so RoPE pairs adjacent dims.
// A sliding window (Mistral) comes from llama.attention.sliding_window.
#include "model/architecture.h"

namespace attnscope::model {

extern const Architecture kLlamaArchitecture = {
    .name = "llama",
    .rope_layout = RopeLayout::kNorm,
    .requires_qkv_bias = false,
    .requires_qk_norm = false,
    .configure = nullptr,
};

}  // namespace attnscope::model
