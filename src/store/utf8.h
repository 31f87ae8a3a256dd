// Byte strings in JSON: UTF-8 validity and the hex form of bytes that are not valid.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace attnscope::store {

// UTF-8 validity as JSON requires it (no overlongs, surrogates or code points > U+10FFFF).
bool valid_utf8(std::string_view s);

std::string bytes_to_hex(std::string_view bytes);  // lowercase, two digits per byte
// The bytes of a hex string (either case); nullopt for an odd length or a non-hex digit.
std::optional<std::string> hex_to_bytes(std::string_view hex);

}  // namespace attnscope::store
