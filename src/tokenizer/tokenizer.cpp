// Tokenizer: encode (llama.cpp's llama_vocab::impl::tokenize), token_to_piece and
// decode. The vocabulary is loaded by vocab.cpp; the algorithms live in spm.cpp
// (SentencePiece), bpe.cpp (byte-level BPE) and special_partition.cpp.
//
// Decode rule: the pieces of all ids are concatenated (control and unknown tokens only
// with render_special), and for SentencePiece vocabularies with add_space_prefix the
// first byte of the result is dropped when it is a space, i.e. the space that encode()
// put in front of the text. This is Hugging Face's decode (its Strip / Metaspace decoder)
// with skip_special_tokens = !render_special. It differs from llama.cpp's detokenize,
// which lets a leading BOS (even when not rendered) use up the space removal, and which
// for some byte-level BPE vocabularies also removes spaces before punctuation
// (clean_up_tokenization_spaces); neither is done here, so that decode(encode(text))
// gives the text back.
#include "attnscope/tokenizer.h"

#include <string>
#include <utility>

#include "attnscope/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/bpe_internal.h"
#include "tokenizer/special_partition.h"
#include "tokenizer/spm.h"
#include "tokenizer/vocab.h"

namespace attnscope {
namespace {

using tokenizer::Fragment;
using tokenizer::Vocab;
using tokenizer::VocabKind;

constexpr std::string_view kSpaceEscape = "\xe2\x96\x81";  // U+2581 "▁"

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xAB>" -> 0xAB; -1 for anything else.
int byte_token_value(const std::string& text) {
  if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>') return -1;
  const int hi = hex_digit(text[3]);
  const int lo = hex_digit(text[4]);
  return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

// tokenizer.ggml.normalizer.nfc: Hugging Face's normalizer for the text between special
// tokens. llama.cpp ignores the key; it changes nothing for text already in NFC.
std::string normalized(const Vocab& v, std::string_view text) {
  return v.normalize_nfc ? tokenizer::normalize_nfc(text) : std::string(text);
}

void encode_spm(const Vocab& v, std::string_view text, const std::vector<Fragment>& fragments,
                std::vector<int32_t>* out) {
  bool prev_special = true;  // the first text fragment gets the space prefix
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out->push_back(f.token);
      prev_special = true;
      continue;
    }
    std::string piece;
    if (v.add_space_prefix && prev_special) piece = " ";
    piece.append(normalized(v, text.substr(f.offset, f.length)));
    tokenizer::spm_tokenize(v, replace_all(piece, " ", kSpaceEscape), out);
    prev_special = false;
  }
}

// Valid UTF-8 text: pre-tokens, then merges within each.
void encode_bpe_run(const Vocab& v, std::string_view run, std::vector<int32_t>* out) {
  if (run.empty()) return;
  for (const std::string& word : v.pre_tokenizer->split(normalized(v, run))) {
    v.merges->encode_word(word, out);
  }
}

// Bytes that are not valid UTF-8 are encoded one by one, each as its own pre-token (a
// byte-level vocabulary has a token for every byte), so that decode gives them back.
// Deliberate difference from llama.cpp, for invalid UTF-8 only: llama.cpp replaces each
// such byte with U+FFFD before pre-tokenizing.
void encode_bpe_text(const Vocab& v, std::string_view text, std::vector<int32_t>* out) {
  size_t run_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const uint32_t cp = tokenizer::detail::decode_utf8(text, &pos);
    if (cp == tokenizer::detail::kReplacementChar && pos == start + 1) {
      encode_bpe_run(v, text.substr(run_start, start - run_start), out);
      v.merges->encode_word(text.substr(start, 1), out);
      run_start = pos;
    }
  }
  encode_bpe_run(v, text.substr(run_start), out);
}

void encode_bpe(const Vocab& v, std::string_view text, const std::vector<Fragment>& fragments,
                std::vector<int32_t>* out) {
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out->push_back(f.token);
    } else {
      encode_bpe_text(v, text.substr(f.offset, f.length), out);
    }
  }
}

const std::string& empty_string() {
  static const std::string kEmpty;
  return kEmpty;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  ATTN_ASSIGN_OR_RETURN(Vocab vocab, tokenizer::load_vocab(file));
  auto impl = std::make_unique<Impl>();
  impl->vocab = std::move(vocab);
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const Vocab& v = impl_->vocab;
  std::vector<int32_t> out;
  const std::vector<Fragment> fragments = tokenizer::partition_special(v, text, parse_special);
  if (add_special && v.add_bos) out.push_back(v.bos_id);
  if (v.kind == VocabKind::kSpm) {
    encode_spm(v, text, fragments, &out);
  } else {
    encode_bpe(v, text, fragments, &out);
  }
  if (add_special && v.add_eos) out.push_back(v.eos_id);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  const Vocab& v = impl_->vocab;
  if (!v.valid(id)) return "";
  const uint32_t attr = v.attrs[id];
  const std::string& text = v.tokens[id];
  constexpr uint32_t kSpecial = tokenizer::kAttrControl | tokenizer::kAttrUnknown;
  if (attr & kSpecial) return render_special ? text : "";
  if (attr & tokenizer::kAttrUserDefined) return text;
  if (attr & tokenizer::kAttrNormal) {
    return v.kind == VocabKind::kSpm ? replace_all(text, kSpaceEscape, " ")
                                     : tokenizer::unicode_to_bytes(text);
  }
  if (attr & tokenizer::kAttrByte) {
    const int byte = byte_token_value(text);
    return byte < 0 ? "" : std::string(1, static_cast<char>(byte));
  }
  return "";  // unused and undefined tokens, as llama.cpp
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  for (int32_t id : ids) out += token_to_piece(id, render_special);
  const Vocab& v = impl_->vocab;
  if (v.kind == VocabKind::kSpm && v.add_space_prefix && !out.empty() && out[0] == ' ') {
    out.erase(0, 1);
  }
  return out;
}

int32_t Tokenizer::n_vocab() const { return impl_->vocab.n_vocab(); }

const std::string& Tokenizer::token_text(int32_t id) const {
  return impl_->vocab.valid(id) ? impl_->vocab.tokens[id] : empty_string();
}

TokenType Tokenizer::token_type(int32_t id) const {
  return impl_->vocab.valid(id) ? impl_->vocab.types[id] : TokenType::kUndefined;
}

const std::string& Tokenizer::model() const { return impl_->vocab.model; }
const std::string& Tokenizer::pre() const { return impl_->vocab.pre; }
int32_t Tokenizer::bos_id() const { return impl_->vocab.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->vocab.eos_id; }
int32_t Tokenizer::eot_id() const { return impl_->vocab.eot_id; }
bool Tokenizer::add_bos() const { return impl_->vocab.add_bos; }
bool Tokenizer::add_eos() const { return impl_->vocab.add_eos; }

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return impl_->vocab.eog_ids.count(id) != 0;
}

}  // namespace attnscope
