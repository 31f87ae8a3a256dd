// general.architecture = "qwen2": Qwen1.5 / Qwen2 / Qwen2.5. LLaMA block with biases
// on the q, k and v projections, rotate-half RoPE.
#include "model/architecture.h"

namespace attnscope::model {

extern const Architecture kQwen2Architecture = {
    .name = "qwen2",
    .rope_layout = RopeLayout::kNeox,
    .requires_qkv_bias = true,
    .requires_qk_norm = false,
    .configure = nullptr,
};

}  // namespace attnscope::model
