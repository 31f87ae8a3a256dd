// Helpers shared by the tokenizer tests: loading a fixture GGUF's tokenizer (cached,
// since the large vocabularies take a moment) and reading the vector files.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/gguf.h"
#include "attnscope/tokenizer.h"
#include "support/fixtures.h"

namespace attnscope::testing {

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The tokenizer of a fixture GGUF (path relative to the fixtures dir), or nullptr with a
// test failure.
inline const Tokenizer* fixture_tokenizer(const std::string& relative) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(relative);
  if (it != cache.end()) return it->second.get();
  auto file = gguf::File::open(fixture_path(relative));
  if (!file.ok()) {
    ADD_FAILURE() << file.error().message;
    return nullptr;
  }
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok.ok()) {
    ADD_FAILURE() << tok.error().message;
    return nullptr;
  }
  auto owned = std::make_unique<Tokenizer>(std::move(tok).value());
  const Tokenizer* raw = owned.get();
  cache.emplace(relative, std::move(owned));
  return raw;
}

inline std::string format_ids(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

// The string with non-printable bytes escaped, for failure messages.
inline std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20) out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
    else out += static_cast<char>(c);
  }
  return out;
}

}  // namespace attnscope::testing
