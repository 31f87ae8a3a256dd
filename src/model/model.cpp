#include "attnscope/model.h"

#include <filesystem>

#include "model/architecture.h"
#include "model/packing.h"
#include "model/weights.h"

namespace attnscope {

Result<std::shared_ptr<const Model>> Model::load(const std::string& path) {
  ATTN_ASSIGN_OR_RETURN(gguf::File file, gguf::File::open(path));
  ATTN_ASSIGN_OR_RETURN(std::string arch_name, file.get_string("general.architecture"));
  const model::Architecture* arch = model::find_architecture(arch_name);
  if (arch == nullptr) {
    std::string names;
    for (const std::string& n : model::architecture_names()) names += (names.empty() ? "" : ", ") + n;
    return make_error("{}: architecture '{}' is not supported yet (supported: {})", path, arch_name,
                      names);
  }

  std::shared_ptr<Model> m(new Model());
  m->path_ = path;
  ATTN_RETURN_IF_ERROR(model::read_common_config(file, *arch, &m->config_));
  ATTN_ASSIGN_OR_RETURN(m->config_.name,
                        file.get_string_or("general.name", std::filesystem::path(path).stem().string()));
  ATTN_RETURN_IF_ERROR(model::bind_weights(file, *arch, &m->config_, &m->weights_));

  ATTN_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::from_gguf(file));
  if (tokenizer.n_vocab() > m->config_.n_vocab) {
    return make_error("{}: the tokenizer has {} tokens but token_embd.weight only {} rows", path,
                      tokenizer.n_vocab(), m->config_.n_vocab);
  }
  m->tokenizer_ = std::make_unique<Tokenizer>(std::move(tokenizer));
  m->file_ = std::move(file);
  return std::shared_ptr<const Model>(std::move(m));
}

Model::~Model() = default;

const ModelWeights& Model::int8_weights(int32_t n_threads) const {
  std::call_once(packed_once_, [&] { packed_ = model::pack_weights(weights_, file_, n_threads); });
  return packed_->weights;
}

std::vector<std::string> supported_architectures() { return model::architecture_names(); }

}  // namespace attnscope
