// The vocabulary behind a Tokenizer: token strings, scores, types and the per-token
// attributes llama.cpp derives from them, the special-token ids and the tokenizer
// flags (add_bos, add_space_prefix, ...). Loaded from GGUF metadata by load_vocab().
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/tokenizer.h"
#include "tokenizer/bpe.h"

namespace attnscope {
namespace gguf {
class File;
}

namespace tokenizer {

// Per-token attribute bits, as llama.cpp's llama_token_attr (so that the special-token
// rules read the same). Derived from tokenizer.ggml.token_type, then adjusted by name.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,  // drop whitespace left of the token when it is matched in text
  kAttrRstrip = 1u << 8,  // drop whitespace right of it
};

enum class VocabKind { kSpm, kBpe };

struct Vocab {
  std::string source;  // file name, for messages
  std::string model;   // tokenizer.ggml.model: "llama" or "gpt2"
  std::string pre;     // tokenizer.ggml.pre, "default" when absent
  VocabKind kind = VocabKind::kSpm;

  std::vector<std::string> tokens;  // (n_vocab) vocabulary strings
  std::vector<float> scores;        // (n_vocab) SentencePiece scores; 0 when absent
  std::vector<TokenType> types;     // (n_vocab) effective types (after llama.cpp's overrides)
  std::vector<uint32_t> attrs;      // (n_vocab) TokenAttr bits
  std::unordered_map<std::string, int32_t> token_to_id;

  // Tokens matched in raw text before the tokenizer proper (control, user-defined and
  // unknown ones), longest text first; ties in id order.
  std::vector<int32_t> special_tokens;
  // SentencePiece byte fallback: id of "<0xXX>" (or of the one-byte token), -1 if none.
  std::array<int32_t, 256> byte_to_token{};

  int32_t bos_id = -1, eos_id = -1, eot_id = -1, eom_id = -1, unk_id = -1;
  int32_t sep_id = -1, pad_id = -1, mask_id = -1;
  int32_t fim_pre_id = -1, fim_suf_id = -1, fim_mid_id = -1;
  int32_t fim_pad_id = -1, fim_rep_id = -1, fim_sep_id = -1;
  std::set<int32_t> eog_ids;  // ids that end generation

  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SentencePiece: "▁" before the text's first fragment
  bool ignore_merges = false;     // BPE: a pre-token that is a whole token skips merging
  bool clean_spaces = false;      // llama.cpp's detokenize clean-up (read, not applied)
  bool normalize_nfc = false;     // tokenizer.ggml.normalizer.nfc (see tokenizer.cpp)

  // Byte-level BPE only.
  std::optional<PreTokenizer> pre_tokenizer;
  std::optional<BpeMerges> merges;

  int32_t n_vocab() const { return static_cast<int32_t>(tokens.size()); }
  bool valid(int32_t id) const { return id >= 0 && id < n_vocab(); }
  int32_t find(const std::string& text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? -1 : it->second;
  }
};

// Reads tokenizer.ggml.* from `file`; errors name the file and the key.
Result<Vocab> load_vocab(const gguf::File& file);

// llama.cpp's name-based adjustments, applied by load_vocab(): special-token ids found
// by their text (EOT, EOM, FIM), the end-of-generation set, and the control attribute
// for tokens that look like control tokens.
void detect_special_tokens(Vocab& vocab);
// Builds vocab.special_tokens from the attributes.
void build_special_token_cache(Vocab& vocab);
// Per-model lstrip/rstrip attributes (llama.cpp sets them by model name).
void set_strip_attributes(Vocab& vocab, const std::string& model_name,
                          const std::string& architecture);

}  // namespace tokenizer

struct Tokenizer::Impl {
  tokenizer::Vocab vocab;
};

}  // namespace attnscope
