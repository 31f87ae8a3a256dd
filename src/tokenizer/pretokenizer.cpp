// PreTokenizer: splits text into pre-tokens the way llama.cpp's unicode_regex_split does.
//
// The regex sequence comes from pretokenizer_regex.cpp. Each regex splits every piece the
// previous one produced; a regex only sees its piece (lookaheads and $ stop at the piece's
// end), and the text between its matches stays as pieces of their own.
//
// llama.cpp runs its regexes with std::regex on one of two stand-ins for the text, and we
// run PCRE2 (JIT when available) on the same stand-ins, so that the categories behave as
// in llama.cpp, quirks included:
//  * a regex containing \p{N}, \p{L}, \p{P}, \p{S}, \p{M} (or \p{Lu}, ...) runs on the
//    "collapsed" text: ASCII stays as is, every other code point becomes one byte naming
//    its class (0x0B for White_Space, 0xD1 number, 0xD2 letter, 0xD3 punctuation, 0xD4
//    mark, 0xD5 symbol, 0xD0 anything else), and each \p{..} becomes a class of that byte
//    plus its ASCII members. So \p{Lu} is any letter, and \p{S} lacks '~' (as upstream).
//    Matched in PCRE2's byte mode, one byte per code point.
//  * any other regex runs on the code points with non-ASCII White_Space replaced by U+000B,
//    in UTF mode.
// In both, \s is ASCII white space plus that U+000B, i.e. exactly Unicode White_Space.
// llama.cpp's hand-written splitters for the GPT-2 and Llama 3 regexes give the same
// pieces as these regexes. $ matches only at the very end (ECMAScript), and a match that
// is empty splits the unmatched text without adding a piece.
//
// Text that is not valid UTF-8: each byte of an ill-formed sequence becomes U+FFFD (as in
// llama.cpp), so the pieces then concatenate to the repaired text, not to the input.
// A PCRE2 match error (e.g. a match limit on a pathological piece) cannot be reported
// through split(); the rest of that piece is kept as one piece.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/bpe_internal.h"

namespace attnscope::tokenizer {
namespace {

using detail::PreTokenizerSpec;

constexpr char kCollapsedSpace = '\x0B';
constexpr char kCollapsedOther = '\xD0';
constexpr char kCollapsedNumber = '\xD1';
constexpr char kCollapsedLetter = '\xD2';
constexpr char kCollapsedPunct = '\xD3';
constexpr char kCollapsedMark = '\xD4';
constexpr char kCollapsedSymbol = '\xD5';

// \p{..} names llama.cpp understands, the byte standing for the class in the collapsed
// text, and the ASCII members (llama.cpp's k_ucat_map; '~' is missing from \p{S} there).
struct CategoryClass {
  std::string_view name;
  char byte;
  std::string_view ascii;
};
constexpr CategoryClass kCategoryClasses[] = {
    {"\\p{N}", kCollapsedNumber, "0-9"},
    {"\\p{L}", kCollapsedLetter, "A-Za-z"},
    {"\\p{P}", kCollapsedPunct, R"(!-#%-*,-/:-;?-@\[-\]_\{\})"},
    {"\\p{M}", kCollapsedMark, ""},
    {"\\p{S}", kCollapsedSymbol, R"(\$\+<->\^`\|)"},
    {"\\p{Lu}", kCollapsedLetter, "A-Za-z"},
    {"\\p{Ll}", kCollapsedLetter, "A-Za-z"},
    {"\\p{Lt}", kCollapsedLetter, "A-Za-z"},
    {"\\p{Lm}", kCollapsedLetter, "A-Za-z"},
    {"\\p{Lo}", kCollapsedLetter, "A-Za-z"},
};

bool uses_categories(std::string_view regex) {
  for (const CategoryClass& c : kCategoryClasses) {
    if (regex.find(c.name) != std::string_view::npos) return true;
  }
  return false;
}

// The regex over the collapsed text: each known \p{..} becomes [<byte><ascii>] (or just
// <byte><ascii> inside a bracket expression), following llama.cpp's rewrite.
std::string collapse_regex(std::string_view regex) {
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < regex.size(); ++i) {
    if (regex[i] == '[' && (i == 0 || regex[i - 1] != '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && regex[i] == ']' && regex[i - 1] != '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (regex[i] == '\\' && i + 3 < regex.size() && regex[i + 1] == 'p' && regex[i + 2] == '{') {
      const size_t close = regex.find('}', i + 3);
      if (close != std::string_view::npos && close <= i + 10) {
        const std::string_view name = regex.substr(i, close - i + 1);
        const CategoryClass* found = nullptr;
        for (const CategoryClass& c : kCategoryClasses) {
          if (c.name == name) found = &c;
        }
        if (found != nullptr) {
          if (!inside) out += '[';
          out += found->byte;
          out += found->ascii;
          if (!inside) out += ']';
          i = close;
          continue;
        }
      }
    }
    out += regex[i];
  }
  return out;
}

char collapsed_class(uint32_t cp) {
  if (cp < 0x80) return static_cast<char>(cp);
  if (detail::is_whitespace(cp)) return kCollapsedSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return kCollapsedLetter;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
      return kCollapsedMark;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return kCollapsedNumber;
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return kCollapsedPunct;
    case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC: case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
      return kCollapsedSymbol;
    default:
      return kCollapsedOther;
  }
}

struct Pcre2CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
struct Pcre2MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};
using Pcre2Code = std::unique_ptr<pcre2_code, Pcre2CodeDeleter>;
using Pcre2MatchData = std::unique_ptr<pcre2_match_data, Pcre2MatchDataDeleter>;

struct CompiledRegex {
  Pcre2Code code;
  bool collapsed = false;  // runs on the collapsed text (byte mode), else on code points (UTF)
};

// The text in the two forms the regexes run on, with code-point offsets.
struct Subject {
  std::vector<uint32_t> cps;        // (n_cps)
  std::string utf8;                 // the text re-encoded (== input when it was valid)
  std::vector<size_t> utf8_offset;  // (n_cps + 1) byte offset of each code point in utf8
  std::string collapsed;            // (n_cps) one byte per code point, built on demand
  std::string wide;                 // utf8 with non-ASCII White_Space as U+000B
  std::vector<size_t> wide_offset;  // (n_cps + 1) byte offset of each code point in wide
  std::vector<uint32_t> wide_cp;    // (wide.size() + 1) code point index at a byte offset
};

Subject make_subject(std::string_view text) {
  Subject s;
  s.cps.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) s.cps.push_back(detail::decode_utf8(text, &pos));
  s.utf8.reserve(text.size());
  s.utf8_offset.reserve(s.cps.size() + 1);
  for (uint32_t cp : s.cps) {
    s.utf8_offset.push_back(s.utf8.size());
    detail::append_utf8(cp, &s.utf8);
  }
  s.utf8_offset.push_back(s.utf8.size());
  return s;
}

void build_collapsed(Subject* s) {
  if (!s->collapsed.empty() || s->cps.empty()) return;
  s->collapsed.resize(s->cps.size());
  for (size_t i = 0; i < s->cps.size(); ++i) s->collapsed[i] = collapsed_class(s->cps[i]);
}

void build_wide(Subject* s) {
  if (!s->wide_offset.empty()) return;
  s->wide.reserve(s->utf8.size());
  s->wide_offset.reserve(s->cps.size() + 1);
  for (uint32_t cp : s->cps) {
    s->wide_offset.push_back(s->wide.size());
    detail::append_utf8(cp >= 0x80 && detail::is_whitespace(cp) ? 0x0B : cp, &s->wide);
  }
  s->wide_offset.push_back(s->wide.size());
  s->wide_cp.assign(s->wide.size() + 1, 0);
  for (size_t i = 0; i < s->wide_offset.size(); ++i) {
    s->wide_cp[s->wide_offset[i]] = static_cast<uint32_t>(i);
  }
}

// One pcre2_match call; retries without JIT if the JIT stack runs out.
int match_once(const pcre2_code* code, std::string_view subject, size_t start, uint32_t options,
               pcre2_match_data* md) {
  const auto* p = reinterpret_cast<PCRE2_SPTR>(subject.data());
  int rc = pcre2_match(code, p, subject.size(), start, options, md, nullptr);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    rc = pcre2_match(code, p, subject.size(), start, options | PCRE2_NO_JIT, md, nullptr);
  }
  return rc;
}

// Splits one piece (`subject`, in the units of the regex's text form) and appends the
// lengths of the new pieces, in those units, to `out`.
void split_piece(const CompiledRegex& re, std::string_view subject, pcre2_match_data* md,
                 std::vector<size_t>* out) {
  const uint32_t base = PCRE2_NO_UTF_CHECK;  // both text forms are built valid
  size_t last_end = 0;  // end of the last match (start of the unmatched gap)
  size_t pos = 0;       // where the next search starts
  uint32_t extra = 0;   // options for the retry after an empty match
  while (pos <= subject.size()) {
    const int rc = match_once(re.code.get(), subject, pos, base | extra, md);
    if (rc == PCRE2_ERROR_NOMATCH && extra != 0) {
      // No non-empty match right after an empty one: search on from the next character.
      extra = 0;
      if (pos == subject.size()) break;
      ++pos;
      if (!re.collapsed) {
        while (pos < subject.size() && (static_cast<uint8_t>(subject[pos]) & 0xC0) == 0x80) ++pos;
      }
      continue;
    }
    if (rc < 0) break;  // no match, or a match error: the rest is one unmatched piece
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t begin = ov[0];
    const size_t end = ov[1];
    if (begin > last_end) out->push_back(begin - last_end);
    if (end > begin) out->push_back(end - begin);
    last_end = end;
    pos = end;
    // After an empty match, look for a non-empty one at the same place (as std::regex).
    extra = end == begin ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
  }
  if (subject.size() > last_end) out->push_back(subject.size() - last_end);
}

std::string known_names_list() {
  std::string out;
  for (const std::string& name : PreTokenizer::known_names()) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

struct PreTokenizer::Impl {
  std::string name;
  bool ignore_merges = false;
  bool any_collapsed = false;
  bool any_wide = false;
  std::vector<CompiledRegex> regexes;
};

PreTokenizer::PreTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::known_names() {
  std::vector<std::string> names;
  for (const PreTokenizerSpec& spec : detail::pre_tokenizer_specs()) {
    for (std::string_view n : spec.names) names.emplace_back(n);
  }
  return names;
}

Result<PreTokenizer> PreTokenizer::create(std::string_view pre_name) {
  const PreTokenizerSpec* spec = detail::find_pre_tokenizer_spec(pre_name);
  if (spec == nullptr) {
    return make_error("unknown pre-tokenizer '{}' (tokenizer.ggml.pre); known: {}", pre_name,
                      known_names_list());
  }
  auto impl = std::make_unique<Impl>();
  impl->name = pre_name.empty() ? "default" : std::string(pre_name);
  impl->ignore_merges = spec->ignore_merges;
  for (size_t i = 0; i < spec->regexes.size(); ++i) {
    const std::string_view source = spec->regexes[i];
    CompiledRegex re;
    re.collapsed = uses_categories(source);
    const std::string pattern = re.collapsed ? collapse_regex(source) : std::string(source);
    const uint32_t options = PCRE2_DOLLAR_ENDONLY | (re.collapsed ? 0 : PCRE2_UTF);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    re.code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                options, &error_code, &error_offset, nullptr));
    if (!re.code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof(message));
      return make_error("pre-tokenizer '{}': regex {} does not compile at offset {}: {}",
                        impl->name, i, error_offset, reinterpret_cast<const char*>(message));
    }
    // JIT is an optimisation only: without it (unsupported platform) pcre2_match interprets.
    (void)pcre2_jit_compile(re.code.get(), PCRE2_JIT_COMPLETE);
    (re.collapsed ? impl->any_collapsed : impl->any_wide) = true;
    impl->regexes.push_back(std::move(re));
  }
  return PreTokenizer(std::move(impl));
}

const std::string& PreTokenizer::name() const { return impl_->name; }
bool PreTokenizer::ignore_merges() const { return impl_->ignore_merges; }

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  Subject s = make_subject(text);
  if (s.cps.empty()) return {};
  if (impl_->any_collapsed) build_collapsed(&s);
  if (impl_->any_wide) build_wide(&s);

  std::vector<size_t> pieces = {s.cps.size()};  // lengths in code points
  std::vector<size_t> next;
  std::vector<size_t> units;
  for (const CompiledRegex& re : impl_->regexes) {
    Pcre2MatchData md(pcre2_match_data_create_from_pattern(re.code.get(), nullptr));
    if (!md) continue;  // out of memory: leave the pieces as they are
    next.clear();
    size_t cp_start = 0;
    for (size_t n_cps : pieces) {
      units.clear();
      if (re.collapsed) {
        split_piece(re, std::string_view(s.collapsed).substr(cp_start, n_cps), md.get(), &units);
        next.insert(next.end(), units.begin(), units.end());
      } else {
        const size_t b0 = s.wide_offset[cp_start];
        const size_t b1 = s.wide_offset[cp_start + n_cps];
        split_piece(re, std::string_view(s.wide).substr(b0, b1 - b0), md.get(), &units);
        size_t b = b0;
        for (size_t n_bytes : units) {  // byte lengths -> code-point lengths
          next.push_back(s.wide_cp[b + n_bytes] - s.wide_cp[b]);
          b += n_bytes;
        }
      }
      cp_start += n_cps;
    }
    pieces.swap(next);
  }

  std::vector<std::string> out;
  out.reserve(pieces.size());
  size_t cp_start = 0;
  for (size_t n_cps : pieces) {
    const size_t b0 = s.utf8_offset[cp_start];
    const size_t b1 = s.utf8_offset[cp_start + n_cps];
    out.emplace_back(s.utf8, b0, b1 - b0);
    cp_start += n_cps;
  }
  return out;
}

}  // namespace attnscope::tokenizer
