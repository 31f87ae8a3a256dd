// The viewer's files (web/), embedded in the binary at build time by
// cmake/embed_web.cmake. The server serves these and nothing else: a request can
// only name an entry of this table, never a path on disk.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace attnscope::server {

struct EmbeddedFile {
  std::string_view path;           // relative to web/, '/'-separated: "main.js", "views/grid.js"
  std::span<const uint8_t> data;
};

// Every embedded file, sorted by path (generated).
std::span<const EmbeddedFile> web_files();
// The file with exactly this path, or nullptr (generated).
const EmbeddedFile* find_web_file(std::string_view path);

inline std::string_view as_text(const EmbeddedFile& f) {
  return {reinterpret_cast<const char*>(f.data.data()), f.data.size()};
}

// "text/javascript; charset=utf-8" for .js, text/css, text/html, image/svg+xml,
// application/json, ...; application/octet-stream for anything else.
const char* content_type_for(std::string_view path);

}  // namespace attnscope::server
