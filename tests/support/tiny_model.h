// Builds small random-weight LLaMA-family GGUF models in memory, for tests of
// loading errors and of properties that hold for any weights.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "attnscope/result.h"

namespace attnscope::testing {

struct TinyModelSpec {
  std::string arch = "llama";
  int32_t n_layers = 2;
  int32_t n_embd = 32;
  int32_t n_heads = 4;
  int32_t n_kv_heads = 2;
  int32_t n_ff = 48;
  int32_t n_ctx = 64;
  int32_t sliding_window = 0;  // 0: key absent
  float attn_softcap = 0.0f;   // 0: key absent
  float weight_scale = 0.5f;   // standard deviation of the random weights
  bool own_output = false;     // an output.weight of its own; otherwise tied to token_embd
  uint64_t seed = 1;
  std::set<std::string> omit_keys;     // metadata keys left out
  std::set<std::string> omit_tensors;  // tensors left out
  // tensor -> ggml type, random bytes of that type (Q8_0: random values, block scales 2^-6;
  // BF16: the F32 weights' distribution, rounded)
  std::map<std::string, uint32_t> tensor_types;
  std::map<std::string, std::vector<uint64_t>> tensor_shapes;  // tensor -> ne override
};

// The vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then "▁" and a-z.
constexpr int32_t kTinyVocab = 3 + 256 + 27;

Result<std::vector<uint8_t>> build_tiny_model(const TinyModelSpec& spec);
// Writes the model to a fresh file under the system temp dir and returns its path.
Result<std::string> write_tiny_model(const TinyModelSpec& spec, const std::string& name);

}  // namespace attnscope::testing
