// A loaded model: hyper-parameters read from GGUF metadata, weights bound to the
// memory-mapped tensors (never copied), and the tokenizer.
//
// Architectures are described in src/model/arch_*.cpp; adding one is adding a file
// and a line in the table of src/model/architectures.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "attnscope/gguf.h"
#include "attnscope/quant.h"
#include "attnscope/result.h"
#include "attnscope/tokenizer.h"

namespace attnscope {

namespace model {
struct PackedWeights;  // src/model/packing.h
}

// How RoPE pairs the dimensions of a head.
enum class RopeLayout {
  kNorm,  // adjacent pairs (2i, 2i+1): llama.cpp's LLAMA_ROPE_TYPE_NORM (GGUF llama q/k rows are permuted to it)
  kNeox,  // halves (i, i + n_rot/2): rotate-half, as Hugging Face and llama.cpp's NEOX
};

struct ModelConfig {
  std::string architecture;  // general.architecture
  std::string name;          // general.name, or the file name
  int32_t n_layers = 0;
  int32_t n_embd = 0;
  int32_t n_heads = 0;       // query heads
  int32_t n_kv_heads = 0;    // key/value heads (grouped-query attention when < n_heads)
  int32_t head_dim = 0;      // key/query length per head
  int32_t head_dim_v = 0;    // value length per head
  int32_t n_ff = 0;
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;   // <arch>.context_length
  float norm_eps = 1e-5f;

  RopeLayout rope_layout = RopeLayout::kNorm;
  int32_t n_rot = 0;             // rotated dimensions per head (<= head_dim)
  float rope_theta = 10000.0f;   // <arch>.rope.freq_base
  float rope_freq_scale = 1.0f;  // 1 / <arch>.rope.scaling.factor for linear scaling
  bool has_rope_freq_factors = false;  // rope_freqs.weight (Llama 3 scaling) present

  int32_t sliding_window = 0;    // 0 = full causal attention; else query i sees keys i-W+1..i
  float attn_softcap = 0.0f;     // 0 = none; else scores = cap * tanh(scores / cap)
  float final_softcap = 0.0f;    // 0 = none; same on the output logits
  float attn_scale = 0.0f;       // multiplier of q·k, 1/sqrt(head_dim)

  bool qkv_bias = false;         // qwen2
  bool qk_norm = false;          // qwen3: RMSNorm over each head of q and k before RoPE
  bool tied_output = false;      // output projection is token_embd.weight
};

// A weight bound to the mapped file. Vectors (norms, biases) are converted to f32.
struct LayerWeights {
  std::vector<float> attn_norm;      // (n_embd)
  quant::Matrix wq;                  // (n_heads * head_dim, n_embd)
  quant::Matrix wk;                  // (n_kv_heads * head_dim, n_embd)
  quant::Matrix wv;                  // (n_kv_heads * head_dim_v, n_embd)
  quant::Matrix wo;                  // (n_embd, n_heads * head_dim_v)
  std::vector<float> bq, bk, bv;     // biases, empty when absent
  std::vector<float> q_norm, k_norm; // (head_dim), empty when absent
  std::vector<float> ffn_norm;       // (n_embd)
  quant::Matrix w_gate;              // (n_ff, n_embd)
  quant::Matrix w_up;                // (n_ff, n_embd)
  quant::Matrix w_down;              // (n_embd, n_ff)
};

struct ModelWeights {
  quant::Matrix token_embd;          // (n_vocab, n_embd)
  std::vector<LayerWeights> layers;  // (n_layers)
  std::vector<float> output_norm;    // (n_embd)
  quant::Matrix output;              // (n_vocab, n_embd); token_embd when tied
  std::vector<float> rope_freq_factors;  // (n_rot / 2), empty when absent
};

class Model {
 public:
  // Opens and validates a GGUF model: architecture, every hyper-parameter, every
  // tensor's shape and type, the tokenizer. Errors name the file and the key or
  // tensor, with expected vs actual.
  static Result<std::shared_ptr<const Model>> load(const std::string& path);

  const std::string& path() const { return path_; }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const gguf::File& gguf() const { return file_; }
  // The weights as the int8 path computes with them: weights() with every Q8_0 matrix
  // also packed into panels for the int8 GEMM (Matrix::packed). Packed on n_threads
  // threads by the first call (thread-safe; later calls return the same weights); each
  // matrix's mapped pages are released once it is packed, so memory stays at about the
  // model's size.
  const ModelWeights& int8_weights(int32_t n_threads) const;

  ~Model();

 private:
  Model() = default;
  std::string path_;
  gguf::File file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  mutable std::once_flag packed_once_;
  mutable std::unique_ptr<model::PackedWeights> packed_;
};

// Names of the architectures this build can run ("llama", "qwen2", "qwen3").
std::vector<std::string> supported_architectures();

}  // namespace attnscope
