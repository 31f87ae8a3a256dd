// general.architecture = "qwen3": LLaMA block with an RMSNorm over each head of q and
// k (attn_q_norm / attn_k_norm, applied before RoPE), rotate-half RoPE, and a head
// size that need not equal n_embd / n_heads (qwen3.attention.key_length).
#include "model/architecture.h"

namespace attnscope::model {

extern const Architecture kQwen3Architecture = {
    .name = "qwen3",
    .rope_layout = RopeLayout::kNeox,
    .requires_qkv_bias = false,
    .requires_qk_norm = true,
    .configure = nullptr,
};

}  // namespace attnscope::model
