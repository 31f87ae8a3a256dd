// Assembling the viewer page: the server and `render` both start from web/index.html
// and insert an import map, the stylesheet and window.ATTNSCOPE_CONFIG (and render, the
// data chunks). Anything that comes from a run (token text, prompts, names) reaches the
// page only as JSON written by script_json(), which cannot end a <script> element.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace attnscope::server {

// Where index.html wants the import map, stylesheet and config (web/README.md). The
// placeholders web/index.html also carries are accepted too, and removed.
constexpr std::string_view kHeadMarker = "<!-- attnscope:head -->";
constexpr std::string_view kPlaceholders[] = {"<!--ATTNSCOPE_IMPORTMAP-->", "<!--ATTNSCOPE_CONFIG-->"};

// JSON that is safe inside a <script> element: ASCII only, and '<', '>', '&', U+2028
// and U+2029 written as \uXXXX escapes (so "</script>" and "<!--" cannot appear).
// Invalid UTF-8 in strings becomes U+FFFD.
std::string script_json(const nlohmann::json& value);

// `index_html` with `head` at kHeadMarker (else at the first placeholder, else after
// the <meta charset> tag, else after the <head> tag, else at the start) and `body_end`
// before the last </body> (else at the end). The marker and placeholders are removed.
std::string assemble_page(std::string_view index_html, std::string_view head, std::string_view body_end);

// Adds nonce="<nonce>" to every <script> tag of a trusted template (the page's own
// inline scripts then pass a nonce-based Content-Security-Policy).
std::string add_script_nonce(std::string_view html, std::string_view nonce);

// Standard base64 with padding (RFC 4648 section 4).
std::string base64_encode(std::span<const uint8_t> bytes);
inline std::string base64_encode(std::string_view text) {
  return base64_encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace attnscope::server
