// Binds GGUF tensors to the model's weight slots, checking each shape and type.
#include "model/weights.h"

#include <filesystem>
#include <string>

#include "attnscope/ggml_type.h"
#include "model/architecture.h"

namespace attnscope::model {
namespace {

std::string shape_string(const gguf::TensorInfo& t) {
  std::string s = "[";
  for (uint32_t i = 0; i < t.n_dims; ++i) s += fmt::format("{}{}", i ? ", " : "", t.ne[i]);
  return s + "]";
}

std::string supported_types() {
  std::string s;
  for (uint32_t id = 0; id < 64; ++id) {
    if (quant::kernels(id) != nullptr) s += fmt::format("{}{}", s.empty() ? "" : ", ", ggml_type_name(id));
  }
  return s;
}

Result<const gguf::TensorInfo*> find_checked(const gguf::File& file, const std::string& name,
                                             std::initializer_list<uint64_t> shape) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  if (t == nullptr) return make_error("{}: missing tensor '{}'", file.source(), name);
  bool match = t->n_dims == shape.size();
  size_t i = 0;
  for (uint64_t d : shape) match = match && t->ne[i++] == d;
  if (!match) {
    std::string expected = "[";
    i = 0;
    for (uint64_t d : shape) expected += fmt::format("{}{}", i++ ? ", " : "", d);
    return make_error("{}: tensor '{}': expected shape {}], found {}", file.source(), name, expected,
                      shape_string(*t));
  }
  if (quant::kernels(t->type) == nullptr) {
    return make_error("{}: tensor '{}' has type {}, which attnscope cannot compute with (supported: {})",
                      file.source(), name, ggml_type_name(t->type), supported_types());
  }
  return t;
}

}  // namespace

Result<quant::Matrix> bind_matrix(const gguf::File& file, const std::string& name, int64_t n_cols,
                                  int64_t n_rows) {
  ATTN_ASSIGN_OR_RETURN(const gguf::TensorInfo* t,
                        find_checked(file, name, {static_cast<uint64_t>(n_cols), static_cast<uint64_t>(n_rows)}));
  ATTN_ASSIGN_OR_RETURN(uint64_t row_bytes, ggml_row_bytes(t->type, static_cast<uint64_t>(n_cols)));
  return quant::Matrix{.type = t->type, .data = t->data, .n_cols = n_cols, .n_rows = n_rows,
                       .row_bytes = row_bytes};
}

Result<std::vector<float>> load_vector(const gguf::File& file, const std::string& name, int64_t n) {
  ATTN_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find_checked(file, name, {static_cast<uint64_t>(n)}));
  std::vector<float> out(static_cast<size_t>(n));  // (n)
  quant::kernels(t->type)->dequantize(t->data, out.data(), n);
  return out;
}

Result<std::vector<float>> load_optional_vector(const gguf::File& file, const std::string& name,
                                                int64_t n) {
  if (file.find_tensor(name) == nullptr) return std::vector<float>{};
  return load_vector(file, name, n);
}

Status bind_weights(const gguf::File& file, const Architecture& arch, ModelConfig* c,
                    ModelWeights* w) {
  const int64_t n_embd = c->n_embd;
  const int64_t n_q = int64_t{c->n_heads} * c->head_dim;
  const int64_t n_k = int64_t{c->n_kv_heads} * c->head_dim;
  const int64_t n_v = int64_t{c->n_kv_heads} * c->head_dim_v;

  const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight");
  if (embd == nullptr) return make_error("{}: missing tensor 'token_embd.weight'", file.source());
  if (embd->n_dims != 2 || embd->ne[1] == 0 || embd->ne[1] > (1u << 24)) {
    return make_error("{}: tensor 'token_embd.weight': expected shape [{}, n_vocab], found {}",
                      file.source(), n_embd, shape_string(*embd));
  }
  c->n_vocab = static_cast<int32_t>(embd->ne[1]);
  ATTN_ASSIGN_OR_RETURN(w->token_embd, bind_matrix(file, "token_embd.weight", n_embd, c->n_vocab));

  w->layers.resize(static_cast<size_t>(c->n_layers));
  for (int32_t l = 0; l < c->n_layers; ++l) {
    LayerWeights& L = w->layers[static_cast<size_t>(l)];
    const std::string b = fmt::format("blk.{}.", l);
    ATTN_ASSIGN_OR_RETURN(L.attn_norm, load_vector(file, b + "attn_norm.weight", n_embd));
    ATTN_ASSIGN_OR_RETURN(L.wq, bind_matrix(file, b + "attn_q.weight", n_embd, n_q));
    ATTN_ASSIGN_OR_RETURN(L.wk, bind_matrix(file, b + "attn_k.weight", n_embd, n_k));
    ATTN_ASSIGN_OR_RETURN(L.wv, bind_matrix(file, b + "attn_v.weight", n_embd, n_v));
    ATTN_ASSIGN_OR_RETURN(L.wo, bind_matrix(file, b + "attn_output.weight", int64_t{c->n_heads} * c->head_dim_v, n_embd));
    if (arch.requires_qkv_bias) {
      ATTN_ASSIGN_OR_RETURN(L.bq, load_vector(file, b + "attn_q.bias", n_q));
      ATTN_ASSIGN_OR_RETURN(L.bk, load_vector(file, b + "attn_k.bias", n_k));
      ATTN_ASSIGN_OR_RETURN(L.bv, load_vector(file, b + "attn_v.bias", n_v));
    } else {  // some llama-architecture conversions carry biases too
      ATTN_ASSIGN_OR_RETURN(L.bq, load_optional_vector(file, b + "attn_q.bias", n_q));
      ATTN_ASSIGN_OR_RETURN(L.bk, load_optional_vector(file, b + "attn_k.bias", n_k));
      ATTN_ASSIGN_OR_RETURN(L.bv, load_optional_vector(file, b + "attn_v.bias", n_v));
    }
    if (arch.requires_qk_norm) {
      ATTN_ASSIGN_OR_RETURN(L.q_norm, load_vector(file, b + "attn_q_norm.weight", c->head_dim));
      ATTN_ASSIGN_OR_RETURN(L.k_norm, load_vector(file, b + "attn_k_norm.weight", c->head_dim));
    }
    ATTN_ASSIGN_OR_RETURN(L.ffn_norm, load_vector(file, b + "ffn_norm.weight", n_embd));
    ATTN_ASSIGN_OR_RETURN(L.w_gate, bind_matrix(file, b + "ffn_gate.weight", n_embd, c->n_ff));
    ATTN_ASSIGN_OR_RETURN(L.w_up, bind_matrix(file, b + "ffn_up.weight", n_embd, c->n_ff));
    ATTN_ASSIGN_OR_RETURN(L.w_down, bind_matrix(file, b + "ffn_down.weight", c->n_ff, n_embd));
  }
  c->qkv_bias = !w->layers.empty() && !w->layers[0].bq.empty();
  c->qk_norm = arch.requires_qk_norm;

  ATTN_ASSIGN_OR_RETURN(w->output_norm, load_vector(file, "output_norm.weight", n_embd));
  if (file.find_tensor("output.weight") != nullptr) {
    ATTN_ASSIGN_OR_RETURN(w->output, bind_matrix(file, "output.weight", n_embd, c->n_vocab));
    c->tied_output = false;
  } else {
    w->output = w->token_embd;
    c->tied_output = true;
  }
  ATTN_ASSIGN_OR_RETURN(w->rope_freq_factors, load_optional_vector(file, "rope_freqs.weight", c->n_rot / 2));
  c->has_rope_freq_factors = !w->rope_freq_factors.empty();
  return ok_status();
}

}  // namespace attnscope::model
