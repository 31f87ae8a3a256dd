// Tokenizers built from GGUF metadata (tokenizer.ggml.*): SentencePiece-style
// ("llama": score-driven merges, byte fallback, space prefix) and byte-level BPE
// ("gpt2": merges ranked by order, pre-tokenizer regex chosen by tokenizer.ggml.pre).
// Behaviour matches llama.cpp's llama_tokenize / llama_token_to_piece and Hugging
// Face tokenizers on the fixtures' test vectors.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/result.h"

namespace attnscope {

namespace gguf {
class File;
}

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3,
  kUserDefined = 4, kUnused = 5, kByte = 6,
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.model, .tokens, .scores, .token_type, .merges, .pre, the
  // special-token ids and add_bos_token / add_eos_token / add_space_prefix.
  static Result<Tokenizer> from_gguf(const gguf::File& file);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special: prepend BOS / append EOS as the model's metadata asks.
  // parse_special: turn control-token text in `text` (e.g. "<|im_start|>") into
  // that token; user-defined tokens are always matched (as llama.cpp does).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes one token contributes to the output text (byte tokens become their
  // byte, "▁" becomes a space, byte-level BPE characters are mapped back to bytes).
  // Control tokens give "" unless `render_special`. Out-of-range ids give "".
  std::string token_to_piece(int32_t id, bool render_special = false) const;
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

  int32_t n_vocab() const;
  const std::string& token_text(int32_t id) const;  // the vocabulary string
  TokenType token_type(int32_t id) const;
  const std::string& model() const;        // "llama" or "gpt2"
  const std::string& pre() const;          // tokenizer.ggml.pre, "default" when absent
  int32_t bos_id() const;                  // -1 when the model has none
  int32_t eos_id() const;
  int32_t eot_id() const;                  // -1 when the model has none
  bool add_bos() const;
  bool add_eos() const;
  // True for tokens that end generation: EOS, EOT and other end-of-generation tokens.
  bool is_end_of_generation(int32_t id) const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streams token pieces to text without splitting a UTF-8 character across two
// outputs: bytes of an incomplete character are held back until it completes.
class TokenTextStream {
 public:
  explicit TokenTextStream(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  // Returns the text that became complete with this token (possibly empty).
  std::string push(int32_t id);
  // Returns whatever is held back (invalid or truncated UTF-8 is passed through as is).
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

}  // namespace attnscope
