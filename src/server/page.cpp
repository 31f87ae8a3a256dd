#include "server/page.h"

#include <algorithm>
#include <cctype>

namespace attnscope::server {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// End (one past '>') of the first tag starting with `open` (e.g. "<head"), or npos.
// `open` followed by a letter or digit is another tag ("<head" in "<header").
size_t end_of_tag(const std::string& lowered, std::string_view open) {
  size_t at = 0;
  while ((at = lowered.find(open, at)) != std::string::npos) {
    const size_t next = at + open.size();
    if (next < lowered.size() && !std::isalnum(static_cast<unsigned char>(lowered[next]))) {
      const size_t close = lowered.find('>', next);
      return close == std::string::npos ? std::string::npos : close + 1;
    }
    at = next;
  }
  return std::string::npos;
}

}  // namespace

std::string script_json(const nlohmann::json& value) {
  const std::string json =
      value.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(json.size() + 16);
  // With ensure_ascii, '<', '>' and '&' can only occur inside strings, where a \u
  // escape means the same character; U+2028/2029 are already escaped.
  for (char c : json) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += c;
    }
  }
  return out;
}

std::string assemble_page(std::string_view index_html, std::string_view head, std::string_view body_end) {
  // The template without its marker and placeholders; `at` is where the first one was.
  std::string page;
  page.reserve(index_html.size());
  size_t at = std::string::npos;
  for (size_t i = 0; i < index_html.size();) {
    std::string_view found;
    for (std::string_view m : {kHeadMarker, kPlaceholders[0], kPlaceholders[1]}) {
      if (index_html.substr(i, m.size()) == m) found = m;
    }
    if (found.empty()) {
      page += index_html[i++];
      continue;
    }
    if (at == std::string::npos || found == kHeadMarker) at = page.size();
    i += found.size();
  }
  const std::string lowered = lower(page);
  size_t body_at = lowered.rfind("</body");
  if (body_at == std::string::npos) body_at = page.size();
  size_t head_at = at;
  if (head_at == std::string::npos) head_at = end_of_tag(lowered, "<meta charset");
  if (head_at == std::string::npos) head_at = end_of_tag(lowered, "<head");
  if (head_at == std::string::npos) head_at = 0;
  head_at = std::min(head_at, body_at);  // keep the order: head before body_end
  std::string out;
  out.reserve(page.size() + head.size() + body_end.size());
  out.append(page, 0, head_at);
  out.append(head);
  out.append(page, head_at, body_at - head_at);
  out.append(body_end);
  out.append(page, body_at, std::string::npos);
  return out;
}

std::string add_script_nonce(std::string_view html, std::string_view nonce) {
  const std::string lowered = lower(html);
  std::string out;
  out.reserve(html.size() + 64);
  size_t from = 0, at = 0;
  constexpr std::string_view kOpen = "<script";
  while ((at = lowered.find(kOpen, at)) != std::string::npos) {
    const size_t next = at + kOpen.size();
    if (next < lowered.size() && (lowered[next] == '>' || std::isspace(static_cast<unsigned char>(lowered[next])))) {
      out.append(html.substr(from, next - from));
      out += " nonce=\"";
      out += nonce;
      out += '"';
      from = next;
    }
    at = next;
  }
  out.append(html.substr(from));
  return out;
}

std::string base64_encode(std::span<const uint8_t> bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (rest == 2 ? uint32_t{bytes[i + 1]} << 8 : 0u);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace attnscope::server
