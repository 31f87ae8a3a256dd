// llama.cpp's name-based special-token rules (llama_vocab::impl::load()): ids found by
// their text, the end-of-generation set, the special-token cache used to match them in
// raw text, and per-model lstrip/rstrip attributes. Token texts are visited in id
// order (llama.cpp walks a hash map, so its choice among several candidates is arbitrary).
#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <iterator>
#include <string_view>

#include "tokenizer/vocab.h"

namespace attnscope::tokenizer {
namespace {

using Names = std::initializer_list<std::string_view>;

template <typename Range>
bool is_one_of(const std::string& text, const Range& names) {
  return std::find(std::begin(names), std::end(names), text) != std::end(names);
}
bool is_one_of(const std::string& text, Names names) { return is_one_of<Names>(text, names); }

void add_attr(Vocab& v, int32_t id, uint32_t attr) {
  v.attrs[id] |= attr;
  if (attr == kAttrControl) v.types[id] = TokenType::kControl;
}

void set_attr(Vocab& v, int32_t id, uint32_t attr, TokenType type) {
  v.attrs[id] = attr;
  v.types[id] = type;
}

// Sets `id` to the first token named in `names` when the file did not give it, and
// makes that token a control token.
template <typename Range>
void detect_id(Vocab& v, int32_t& id, const Range& names) {
  if (id >= 0) return;
  for (int32_t t = 0; t < v.n_vocab(); ++t) {
    if (is_one_of(v.tokens[t], names)) {
      id = t;
      add_attr(v, t, kAttrControl);
      return;
    }
  }
}

constexpr std::string_view kEotNames[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                             "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                             "<｜end▁of▁sentence｜>", "<end_of_utterance>"};
constexpr std::string_view kEogNames[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
                             "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>",
                             "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                             "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>",
                             "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["};

}  // namespace

void detect_special_tokens(Vocab& v) {
  detect_id(v, v.eot_id, kEotNames);
  detect_id(v, v.eom_id, Names{"<|eom_id|>"});
  detect_id(v, v.fim_pre_id, Names{"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>",
                              "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"});
  detect_id(v, v.fim_suf_id, Names{"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>",
                              "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"});
  detect_id(v, v.fim_mid_id, Names{"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>",
                              "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"});
  detect_id(v, v.fim_pad_id, Names{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
  detect_id(v, v.fim_rep_id, Names{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
  detect_id(v, v.fim_sep_id, Names{"<|file_sep|>"});

  // Control tokens named "unused..." are unused.
  for (int32_t t = 0; t < v.n_vocab(); ++t) {
    if ((v.attrs[t] & kAttrControl) && v.tokens[t].find("unused") != std::string::npos) {
      v.attrs[t] |= kAttrUnused;
    }
  }

  v.eog_ids.clear();
  for (int32_t id : {v.fim_pad_id, v.fim_rep_id, v.fim_sep_id}) {
    if (id >= 0) v.eog_ids.insert(id);
  }
  for (int32_t t = 0; t < v.n_vocab(); ++t) {
    if (is_one_of(v.tokens[t], kEogNames)) {
      v.eog_ids.insert(t);
      add_attr(v, t, kAttrControl);
    }
  }
  // gpt-oss: these always render.
  for (int32_t t = 0; t < v.n_vocab(); ++t) {
    if (is_one_of(v.tokens[t], {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})) {
      set_attr(v, t, kAttrUserDefined, TokenType::kUserDefined);
    }
  }
  for (int32_t id : {v.eos_id, v.eot_id, v.eom_id}) {
    if (id >= 0) v.eog_ids.insert(id);
  }

  auto eog_named = [&](std::string_view name) -> int32_t {
    for (int32_t id : v.eog_ids) {
      if (v.tokens[id] == name) return id;
    }
    return -1;
  };
  // o200k_harmony / solar-open: "<|end|>" is not end-of-generation there.
  const int32_t end_id = eog_named("<|end|>");
  const bool has_return = eog_named("<|return|>") >= 0;
  const bool has_call = eog_named("<|call|>") >= 0 || eog_named("<|calls|>") >= 0;
  const bool has_flush = eog_named("<|flush|>") >= 0;
  if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
    v.eog_ids.erase(end_id);
    set_attr(v, end_id, kAttrUserDefined, TokenType::kUserDefined);
  }
  // gemma4 / paddleocr: "</s>" is a normal token when "<|tool_response>" exists.
  const int32_t s_id = eog_named("</s>");
  if (s_id >= 0 && eog_named("<|tool_response>") >= 0) {
    v.eog_ids.erase(s_id);
    set_attr(v, s_id, kAttrNormal, TokenType::kNormal);
  }
}

void build_special_token_cache(Vocab& v) {
  v.special_tokens.clear();
  for (int32_t t = 0; t < v.n_vocab(); ++t) {
    if (v.attrs[t] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v.special_tokens.push_back(t);
  }
  std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](int32_t a, int32_t b) {
    return v.tokens[a].size() > v.tokens[b].size();
  });
}

void set_strip_attributes(Vocab& v, const std::string& model_name, const std::string& architecture) {
  std::string name = model_name;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto contains_any = [](const std::string& s, Names parts) {
    return std::any_of(parts.begin(), parts.end(),
                       [&](std::string_view p) { return s.find(p) != std::string::npos; });
  };
  auto set_named = [&](std::string_view token, uint32_t attr, bool on) {
    const int32_t id = v.find(std::string(token));
    if (id < 0) return;
    v.attrs[id] = on ? (v.attrs[id] | attr) : (v.attrs[id] & ~attr);
  };
  if (contains_any(v.pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains_any(architecture, {"nomic-bert-moe", "jina-bert-v3"})) {
    set_named("<mask>", kAttrLstrip, true);
  } else if (contains_any(name, {"phi-3", "phi3"})) {
    for (int32_t id : v.special_tokens) v.attrs[id] |= kAttrRstrip;
    set_named("</s>", kAttrRstrip, true);
    for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) set_named(t, kAttrRstrip, false);
  } else if (contains_any(name, {"modern-bert"})) {
    set_named("[MASK]", kAttrLstrip, true);
  }
}

}  // namespace attnscope::tokenizer
