#include <array>
#include <cmath>

#include "model/architecture.h"

namespace attnscope::model {

extern const Architecture kLlamaArchitecture;
extern const Architecture kQwen2Architecture;
extern const Architecture kQwen3Architecture;

namespace {

// One line per supported architecture.
const std::array<const Architecture*, 3> kArchitectures = {
    &kLlamaArchitecture,
    &kQwen2Architecture,
    &kQwen3Architecture,
};

Result<int32_t> positive_int(const gguf::File& file, const std::string& key, int64_t max) {
  ATTN_ASSIGN_OR_RETURN(int64_t v, file.get_int(key));
  if (v <= 0 || v > max) {
    return make_error("{}: metadata key '{}' = {}: expected 1..{}", file.source(), key, v, max);
  }
  return static_cast<int32_t>(v);
}

Result<int32_t> positive_int_or(const gguf::File& file, const std::string& key, int64_t fallback,
                                int64_t max) {
  if (file.find(key) == nullptr) return static_cast<int32_t>(fallback);
  return positive_int(file, key, max);
}

}  // namespace

const Architecture* find_architecture(std::string_view name) {
  for (const Architecture* a : kArchitectures) {
    if (name == a->name) return a;
  }
  return nullptr;
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const Architecture* a : kArchitectures) names.emplace_back(a->name);
  return names;
}

Status read_common_config(const gguf::File& file, const Architecture& arch, ModelConfig* c) {
  const std::string p = std::string(arch.name) + ".";
  // Bounds keep every later size computation far from overflow.
  constexpr int64_t kMaxDim = 1 << 20;
  constexpr int64_t kMaxLayers = 4096;
  constexpr int64_t kMaxHeads = 4096;

  c->architecture = arch.name;
  c->rope_layout = arch.rope_layout;
  ATTN_ASSIGN_OR_RETURN(c->n_layers, positive_int(file, p + "block_count", kMaxLayers));
  ATTN_ASSIGN_OR_RETURN(c->n_embd, positive_int(file, p + "embedding_length", kMaxDim));
  ATTN_ASSIGN_OR_RETURN(c->n_ff, positive_int(file, p + "feed_forward_length", kMaxDim * 4));
  ATTN_ASSIGN_OR_RETURN(c->n_heads, positive_int(file, p + "attention.head_count", kMaxHeads));
  ATTN_ASSIGN_OR_RETURN(c->n_kv_heads,
                        positive_int_or(file, p + "attention.head_count_kv", c->n_heads, kMaxHeads));
  if (c->n_heads % c->n_kv_heads != 0) {
    return make_error("{}: {}attention.head_count ({}) is not a multiple of head_count_kv ({})",
                      file.source(), p, c->n_heads, c->n_kv_heads);
  }
  const int64_t default_head_dim = c->n_embd / c->n_heads;
  ATTN_ASSIGN_OR_RETURN(c->head_dim,
                        positive_int_or(file, p + "attention.key_length", default_head_dim, kMaxDim));
  ATTN_ASSIGN_OR_RETURN(c->head_dim_v, positive_int_or(file, p + "attention.value_length",
                                                       default_head_dim, kMaxDim));
  ATTN_ASSIGN_OR_RETURN(c->n_ctx_train, positive_int_or(file, p + "context_length", 2048, 1 << 24));
  ATTN_ASSIGN_OR_RETURN(double eps, file.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
  if (!(eps > 0.0 && eps < 1.0)) {
    return make_error("{}: {}attention.layer_norm_rms_epsilon = {}: expected a small positive number",
                      file.source(), p, eps);
  }
  c->norm_eps = static_cast<float>(eps);

  // RoPE.
  ATTN_ASSIGN_OR_RETURN(c->n_rot, positive_int_or(file, p + "rope.dimension_count", c->head_dim, kMaxDim));
  if (c->n_rot > c->head_dim || c->n_rot % 2 != 0) {
    return make_error("{}: {}rope.dimension_count = {}: expected an even number <= head size {}",
                      file.source(), p, c->n_rot, c->head_dim);
  }
  ATTN_ASSIGN_OR_RETURN(double theta, file.get_float_or(p + "rope.freq_base", 10000.0));
  if (!(theta > 1.0) || !std::isfinite(theta)) {
    return make_error("{}: {}rope.freq_base = {}: expected a number > 1", file.source(), p, theta);
  }
  c->rope_theta = static_cast<float>(theta);
  ATTN_ASSIGN_OR_RETURN(std::string scaling, file.get_string_or(p + "rope.scaling.type", "none"));
  ATTN_ASSIGN_OR_RETURN(double factor, file.get_float_or(p + "rope.scaling.factor", 1.0));
  if (file.find(p + "rope.scale_linear") != nullptr) {  // older GGUFs
    scaling = "linear";
    ATTN_ASSIGN_OR_RETURN(factor, file.get_float(p + "rope.scale_linear"));
  }
  if (scaling == "linear") {
    if (!(factor > 0.0) || !std::isfinite(factor)) {
      return make_error("{}: {}rope.scaling.factor = {}: expected a positive number", file.source(),
                        p, factor);
    }
    c->rope_freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none" && scaling != "llama3" && !(scaling == "yarn" && factor == 1.0)) {
    // Llama 3 scaling arrives as the rope_freqs.weight tensor, so its type adds nothing.
    return make_error("{}: {}rope.scaling.type = '{}' is not supported yet (supported: none, linear, llama3)",
                      file.source(), p, scaling);
  }

  // Attention variants.
  ATTN_ASSIGN_OR_RETURN(c->sliding_window,
                        positive_int_or(file, p + "attention.sliding_window", 0, 1 << 24));
  ATTN_ASSIGN_OR_RETURN(double softcap, file.get_float_or(p + "attn_logit_softcapping", 0.0));
  ATTN_ASSIGN_OR_RETURN(double final_softcap, file.get_float_or(p + "final_logit_softcapping", 0.0));
  if (softcap < 0.0 || final_softcap < 0.0) {
    return make_error("{}: negative logit soft-capping", file.source());
  }
  c->attn_softcap = static_cast<float>(softcap);
  c->final_softcap = static_cast<float>(final_softcap);
  c->attn_scale = 1.0f / std::sqrt(static_cast<float>(c->head_dim));

  if (arch.configure != nullptr) return arch.configure(file, c);
  return ok_status();
}

}  // namespace attnscope::model
