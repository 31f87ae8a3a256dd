// Binding GGUF tensors to weight slots (shape and type checked, data left in the mapping).
#pragma once

#include <string>
#include <vector>

#include "attnscope/gguf.h"
#include "attnscope/model.h"

namespace attnscope::model {

struct Architecture;

// A 2-D tensor of GGUF shape [n_cols, n_rows] whose type has compute kernels.
Result<quant::Matrix> bind_matrix(const gguf::File& file, const std::string& name, int64_t n_cols,
                                  int64_t n_rows);
// A 1-D tensor of n elements, converted to f32.
Result<std::vector<float>> load_vector(const gguf::File& file, const std::string& name, int64_t n);
// As load_vector, or empty when the tensor is absent.
Result<std::vector<float>> load_optional_vector(const gguf::File& file, const std::string& name,
                                                int64_t n);

// Binds every weight of a LLaMA-family model; sets n_vocab, qkv_bias, qk_norm,
// tied_output and has_rope_freq_factors in `config`.
Status bind_weights(const gguf::File& file, const Architecture& arch, ModelConfig* config,
                    ModelWeights* weights);

}  // namespace attnscope::model
