// What distinguishes one architecture of the LLaMA family from another: its RoPE
// layout, which optional tensors it must have, and any metadata beyond the common keys.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "attnscope/gguf.h"
#include "attnscope/model.h"
#include "attnscope/result.h"

namespace attnscope::model {

struct Architecture {
  const char* name;  // general.architecture
  RopeLayout rope_layout;
  bool requires_qkv_bias;  // q/k/v projections have biases (qwen2)
  bool requires_qk_norm;   // per-head RMSNorm on q and k (qwen3)
  // Architecture-specific metadata, read after the common keys; may be null.
  Status (*configure)(const gguf::File& file, ModelConfig* config);
};

// nullptr if the architecture is not supported.
const Architecture* find_architecture(std::string_view name);
std::vector<std::string> architecture_names();

// Reads the keys every LLaMA-family architecture shares ("<arch>.block_count", ...).
Status read_common_config(const gguf::File& file, const Architecture& arch, ModelConfig* config);

}  // namespace attnscope::model
