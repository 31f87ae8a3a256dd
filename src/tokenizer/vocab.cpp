// Loading a Vocab from GGUF metadata, following llama.cpp's llama_vocab::load():
// the defaults per tokenizer model and pre-tokenizer, then the file's keys on top.
#include "tokenizer/vocab.h"

#include <cmath>

#include <fmt/format.h>

#include <string_view>
#include <utility>

#include "attnscope/gguf.h"

namespace attnscope::tokenizer {
namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kPreKey = "tokenizer.ggml.pre";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";

// A present key must hold an array; a missing one gives nullptr.
Result<const gguf::Array*> find_array(const gguf::File& file, std::string_view key) {
  const gguf::Value* value = file.find(key);
  if (value == nullptr) return static_cast<const gguf::Array*>(nullptr);
  const gguf::Array* array = value->as_array();
  if (array == nullptr) {
    return make_error("{}: {} is a {}, expected an array", file.source(), key,
                      gguf::value_type_name(value->type));
  }
  return array;
}

Result<std::vector<std::string>> read_strings(const gguf::File& file, std::string_view key,
                                              const gguf::Array& array) {
  std::vector<std::string> out;
  out.reserve(array.items.size());
  for (size_t i = 0; i < array.items.size(); ++i) {
    const std::string* s = array.items[i].as_string();
    if (s == nullptr) {
      return make_error("{}: {}[{}] is a {}, expected a string", file.source(), key, i,
                        gguf::value_type_name(array.items[i].type));
    }
    out.push_back(*s);
  }
  return out;
}

Result<bool> read_bool_or(const gguf::File& file, std::string_view key, bool fallback) {
  const gguf::Value* value = file.find(key);
  if (value == nullptr) return fallback;
  std::optional<bool> b = value->as_bool();
  if (!b) {
    return make_error("{}: {} is a {}, expected a bool", file.source(), key,
                      gguf::value_type_name(value->type));
  }
  return *b;
}

// Reads one special-token id key into `id` when present. With `strict`, an id outside
// the vocabulary is an error; otherwise it is ignored and the default kept (as llama.cpp).
Status read_token_id(const gguf::File& file, std::string_view key, int32_t n_vocab, bool strict,
                     int32_t& id) {
  const gguf::Value* value = file.find(key);
  if (value == nullptr) return ok_status();
  std::optional<int64_t> v = value->as_int();
  if (!v) {
    return make_error("{}: {} is a {}, expected an integer token id", file.source(), key,
                      gguf::value_type_name(value->type));
  }
  if (*v < 0 || *v >= n_vocab) {
    if (!strict) return ok_status();
    return make_error("{}: {} is {}, expected a token id in [0, {}) (the vocabulary size)",
                      file.source(), key, *v, n_vocab);
  }
  id = static_cast<int32_t>(*v);
  return ok_status();
}

TokenType type_from_int(int64_t t) {
  if (t < 0 || t > static_cast<int64_t>(TokenType::kByte)) return TokenType::kUndefined;
  return static_cast<TokenType>(t);
}

uint32_t attr_from_type(TokenType t) {
  switch (t) {
    case TokenType::kUnknown: return kAttrUnknown;
    case TokenType::kUnused: return kAttrUnused;
    case TokenType::kNormal: return kAttrNormal;
    case TokenType::kControl: return kAttrControl;
    case TokenType::kUserDefined: return kAttrUserDefined;
    case TokenType::kByte: return kAttrByte;
    case TokenType::kUndefined: return kAttrUndefined;
  }
  return kAttrUndefined;
}

// Token strings, scores and types; every array must have one entry per token.
Status load_tokens(const gguf::File& file, Vocab& v) {
  ATTN_ASSIGN_OR_RETURN(const gguf::Array* tokens, find_array(file, kTokensKey));
  if (tokens == nullptr) {
    return make_error("{}: {} is missing (expected an array of strings, one per token)",
                      file.source(), kTokensKey);
  }
  ATTN_ASSIGN_OR_RETURN(v.tokens, read_strings(file, kTokensKey, *tokens));
  const size_t n = v.tokens.size();
  if (n == 0) return make_error("{}: {} is empty, expected at least one token", file.source(), kTokensKey);
  if (n > static_cast<size_t>(INT32_MAX)) {
    return make_error("{}: {} has {} entries, more than token ids can address", file.source(),
                      kTokensKey, n);
  }

  v.scores.assign(n, 0.0f);
  ATTN_ASSIGN_OR_RETURN(const gguf::Array* scores, find_array(file, kScoresKey));
  if (scores != nullptr) {
    if (scores->items.size() != n) {
      return make_error("{}: {} has {} entries, expected {} (one per token)", file.source(),
                        kScoresKey, scores->items.size(), n);
    }
    for (size_t i = 0; i < n; ++i) {
      std::optional<double> s = scores->items[i].as_float();
      if (!s) {
        return make_error("{}: {}[{}] is a {}, expected a number", file.source(), kScoresKey, i,
                          gguf::value_type_name(scores->items[i].type));
      }
      // NaN would break the merge queue's ordering; infinities are legitimate sentinels.
      if (std::isnan(*s)) {
        return make_error("{}: {}[{}] is NaN, expected a number", file.source(), kScoresKey, i);
      }
      v.scores[i] = static_cast<float>(*s);
    }
  }

  v.types.assign(n, TokenType::kNormal);
  ATTN_ASSIGN_OR_RETURN(const gguf::Array* types, find_array(file, kTypesKey));
  if (types != nullptr) {
    if (types->items.size() != n) {
      return make_error("{}: {} has {} entries, expected {} (one per token)", file.source(),
                        kTypesKey, types->items.size(), n);
    }
    for (size_t i = 0; i < n; ++i) {
      std::optional<int64_t> t = types->items[i].as_int();
      if (!t) {
        return make_error("{}: {}[{}] is a {}, expected an integer token type", file.source(),
                          kTypesKey, i, gguf::value_type_name(types->items[i].type));
      }
      v.types[i] = type_from_int(*t);
    }
  }

  v.attrs.resize(n);
  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // llama.cpp renames empty tokens so that the text -> id map stays one-to-one.
    if (v.tokens[i].empty()) v.tokens[i] = fmt::format("[EMPTY_{}]", i);
    auto [it, inserted] = v.token_to_id.emplace(v.tokens[i], static_cast<int32_t>(i));
    if (!inserted) {
      return make_error("{}: {} has '{}' at ids {} and {}, expected unique token strings",
                        file.source(), kTokensKey, v.tokens[i], it->second, i);
    }
    v.attrs[i] = attr_from_type(v.types[i]);
  }
  return ok_status();
}

// Flags that depend on the pre-tokenizer name (llama.cpp's load(), BPE branch).
void set_bpe_flags(Vocab& v) {
  const std::string& p = v.pre;
  v.add_space_prefix = false;
  v.clean_spaces = true;
  static const std::set<std::string, std::less<>> kLlama3 = {
      "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
      "jina-v5-nano"};
  static const std::set<std::string, std::less<>> kNoClean = {
      "deepseek-llm", "deepseek-coder", "deepseek-v3", "spark2_5", "youtu", "command-r", "qwen2",
      "deepseek-r1-qwen", "kormo", "f2llmv2", "qwen35", "poro-chat", "viking", "tekken", "smollm",
      "chameleon", "gpt-4o", "llama4", "kanana2", "talkie", "granite-embed-multi-97m", "tiny_aya",
      "cohere2moe", "superbpe", "trillion", "granite-docling", "bailingmoe", "bailingmoe2",
      "llada-moe", "seed-coder", "hunyuan", "hunyuan-dense", "hy_v4", "joyai-llm", "kimi-k2",
      "ufakzeka", "grok-2", "afmoe", "laguna", "minimax-m2", "solar-open", "sarvam-moe"};
  // (ignore_merges comes with the pre-tokenizer: PreTokenizer::ignore_merges().)
  if (kLlama3.count(p) != 0 || p == "tekken" || p == "chameleon") v.add_bos = true;
  if (kNoClean.count(p) != 0) v.clean_spaces = false;
  if (p == "glm4" || p == "chatglm-bpe") v.bos_id = -1;
}

Status load_ids_and_flags(const gguf::File& file, Vocab& v) {
  const int32_t n = v.n_vocab();
  // Defaults per model (llama.cpp), dropped when outside the vocabulary.
  for (int32_t* id : {&v.bos_id, &v.eos_id, &v.unk_id}) {
    if (*id >= n) *id = -1;
  }
  struct IdKey {
    std::string_view key;
    int32_t* id;
    bool strict;  // ids the tokenizer itself uses must be valid
  };
  const IdKey keys[] = {
      {"tokenizer.ggml.bos_token_id", &v.bos_id, true},
      {"tokenizer.ggml.eos_token_id", &v.eos_id, true},
      {"tokenizer.ggml.eot_token_id", &v.eot_id, true},
      {"tokenizer.ggml.eom_token_id", &v.eom_id, true},
      {"tokenizer.ggml.unknown_token_id", &v.unk_id, true},
      {"tokenizer.ggml.seperator_token_id", &v.sep_id, false},  // sic: the GGUF key's spelling
      {"tokenizer.ggml.padding_token_id", &v.pad_id, false},
      {"tokenizer.ggml.mask_token_id", &v.mask_id, false},
      {"tokenizer.ggml.fim_pre_token_id", &v.fim_pre_id, false},
      {"tokenizer.ggml.fim_suf_token_id", &v.fim_suf_id, false},
      {"tokenizer.ggml.fim_mid_token_id", &v.fim_mid_id, false},
      {"tokenizer.ggml.fim_pad_token_id", &v.fim_pad_id, false},
      {"tokenizer.ggml.fim_rep_token_id", &v.fim_rep_id, false},
      {"tokenizer.ggml.fim_sep_token_id", &v.fim_sep_id, false},
      {"tokenizer.ggml.prefix_token_id", &v.fim_pre_id, false},  // deprecated names
      {"tokenizer.ggml.suffix_token_id", &v.fim_suf_id, false},
      {"tokenizer.ggml.middle_token_id", &v.fim_mid_id, false},
  };
  for (const IdKey& k : keys) ATTN_RETURN_IF_ERROR(read_token_id(file, k.key, n, k.strict, *k.id));

  ATTN_ASSIGN_OR_RETURN(v.add_bos, read_bool_or(file, "tokenizer.ggml.add_bos_token", v.add_bos));
  ATTN_ASSIGN_OR_RETURN(v.add_eos, read_bool_or(file, "tokenizer.ggml.add_eos_token", v.add_eos));
  if (v.add_bos && v.bos_id < 0) {
    return make_error("{}: tokenizer.ggml.add_bos_token is true, but the model has no BOS token "
                      "(tokenizer.ggml.bos_token_id is not set)", file.source());
  }
  if (v.add_eos && v.eos_id < 0) {
    return make_error("{}: tokenizer.ggml.add_eos_token is true, but the model has no EOS token "
                      "(tokenizer.ggml.eos_token_id is not set)", file.source());
  }
  return ok_status();
}

std::string byte_token_text(int b) { return fmt::format("<0x{:02X}>", b); }

}  // namespace

Result<Vocab> load_vocab(const gguf::File& file) {
  Vocab v;
  v.source = file.source();

  const gguf::Value* model = file.find(kModelKey);
  if (model == nullptr) {
    return make_error("{}: {} is missing (expected 'llama' or 'gpt2')", file.source(), kModelKey);
  }
  if (model->as_string() == nullptr) {
    return make_error("{}: {} is a {}, expected a string", file.source(), kModelKey,
                      gguf::value_type_name(model->type));
  }
  v.model = *model->as_string();
  if (v.model == "llama") {
    v.kind = VocabKind::kSpm;
    v.bos_id = 1;
    v.eos_id = 2;
    v.unk_id = 0;
  } else if (v.model == "gpt2") {
    v.kind = VocabKind::kBpe;
    v.bos_id = 11;
    v.eos_id = 11;
  } else {
    return make_error("{}: unsupported tokenizer model '{}' in {} (supported: llama, gpt2)",
                      file.source(), v.model, kModelKey);
  }

  const gguf::Value* pre = file.find(kPreKey);
  if (pre != nullptr && pre->as_string() == nullptr) {
    return make_error("{}: {} is a {}, expected a string", file.source(), kPreKey,
                      gguf::value_type_name(pre->type));
  }
  v.pre = (pre != nullptr && !pre->as_string()->empty()) ? *pre->as_string() : "default";

  if (v.kind == VocabKind::kSpm) {
    v.add_space_prefix = true;
    v.add_bos = true;
    v.add_eos = false;
  } else {
    set_bpe_flags(v);
  }
  ATTN_ASSIGN_OR_RETURN(v.add_space_prefix,
                        read_bool_or(file, "tokenizer.ggml.add_space_prefix", v.add_space_prefix));

  ATTN_RETURN_IF_ERROR(load_tokens(file, v));

  if (v.kind == VocabKind::kBpe) {
    ATTN_ASSIGN_OR_RETURN(const gguf::Array* merges_array, find_array(file, kMergesKey));
    if (merges_array == nullptr) {
      return make_error("{}: {} is missing (a gpt2 tokenizer needs its BPE merges)",
                        file.source(), kMergesKey);
    }
    ATTN_ASSIGN_OR_RETURN(std::vector<std::string> merges,
                          read_strings(file, kMergesKey, *merges_array));
    auto pre_tokenizer = PreTokenizer::create(v.pre);
    if (!pre_tokenizer.ok()) {
      return make_error("{}: {}: {}", file.source(), kPreKey, pre_tokenizer.error().message);
    }
    v.pre_tokenizer.emplace(std::move(pre_tokenizer).value());
    v.ignore_merges = v.pre_tokenizer->ignore_merges();
    auto bpe = BpeMerges::create(v.tokens, merges, v.ignore_merges);
    if (!bpe.ok()) return make_error("{}: {}: {}", file.source(), kMergesKey, bpe.error().message);
    v.merges.emplace(std::move(bpe).value());
  }
  ATTN_ASSIGN_OR_RETURN(v.normalize_nfc,
                        read_bool_or(file, "tokenizer.ggml.normalizer.nfc", false));

  ATTN_RETURN_IF_ERROR(load_ids_and_flags(file, v));

  for (int b = 0; b < 256; ++b) {
    int32_t id = v.find(byte_token_text(b));
    if (id < 0) id = v.find(std::string(1, static_cast<char>(b)));
    v.byte_to_token[b] = id;
  }

  detect_special_tokens(v);
  build_special_token_cache(v);
  ATTN_ASSIGN_OR_RETURN(std::string name, file.get_string_or("general.name", ""));
  ATTN_ASSIGN_OR_RETURN(std::string arch, file.get_string_or("general.architecture", ""));
  set_strip_attributes(v, name, arch);
  return v;
}

}  // namespace attnscope::tokenizer
