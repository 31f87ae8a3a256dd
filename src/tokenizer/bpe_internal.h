// Internals shared by pretokenizer.cpp, pretokenizer_regex.cpp and bpe.cpp: the table of
// pre-tokenizer regex sequences (llama.cpp's, keyed by tokenizer.ggml.pre) and the
// UTF-8 / code-point helpers that reproduce llama.cpp's handling of text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attnscope::tokenizer::detail {

// One pre-tokenizer: every tokenizer.ggml.pre name that selects it, the regexes applied
// in order (each splits the pieces the previous one produced; text a regex does not
// match stays a piece of its own), and whether a pre-token that is already a whole
// vocabulary entry skips the merges (llama.cpp's ignore_merges).
struct PreTokenizerSpec {
  std::vector<std::string_view> names;
  std::vector<std::string_view> regexes;  // llama.cpp's regex_exprs (ECMAScript-compatible)
  bool ignore_merges = false;
};

const std::vector<PreTokenizerSpec>& pre_tokenizer_specs();
// nullptr for an unknown name. "" selects "default", as llama.cpp does for a missing key.
const PreTokenizerSpec* find_pre_tokenizer_spec(std::string_view name);

constexpr uint32_t kReplacementChar = 0xFFFD;

// Decodes the UTF-8 character at text[*pos] and advances *pos. An ill-formed sequence
// (bad lead or continuation byte, truncation, overlong form, surrogate, > U+10FFFF)
// consumes one byte and gives U+FFFD, as llama.cpp's unicode_cpts_from_utf8 does for
// the sequences it rejects.
uint32_t decode_utf8(std::string_view text, size_t* pos);
void append_utf8(uint32_t cp, std::string* out);

// Unicode White_Space (llama.cpp's unicode_set_whitespace).
bool is_whitespace(uint32_t cp);

}  // namespace attnscope::tokenizer::detail
