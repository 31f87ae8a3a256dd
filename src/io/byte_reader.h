// Bounds-checked little-endian reader over a byte span, for the binary parsers.
// Every read checks the bytes remaining first; a short read is an error that names
// the file, the offset, the byte count and what was being read:
//   "<file>: truncated: needed 8 bytes at offset 24 for tensor count, file has 27"
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "attnscope/result.h"

namespace attnscope::io {

inline uint16_t load_le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t load_le64(const uint8_t* p) {
  return static_cast<uint64_t>(load_le32(p)) | (static_cast<uint64_t>(load_le32(p + 4)) << 32);
}

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, const std::string& source)
      : bytes_(bytes), source_(source) {}

  uint64_t offset() const { return pos_; }
  uint64_t size() const { return bytes_.size(); }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  const std::string& source() const { return source_; }

  Error truncated(uint64_t n, std::string_view what) const {
    return make_error("{}: truncated: needed {} bytes at offset {} for {}, file has {}", source_, n,
                      pos_, what, bytes_.size());
  }

  // Returns a pointer to the next n bytes and advances past them.
  Result<const uint8_t*> take(uint64_t n, std::string_view what) {
    if (n > remaining()) return truncated(n, what);
    const uint8_t* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }

  Result<uint8_t> u8(std::string_view what) {
    ATTN_ASSIGN_OR_RETURN(const uint8_t* p, take(1, what));
    return *p;
  }
  Result<uint16_t> u16(std::string_view what) {
    ATTN_ASSIGN_OR_RETURN(const uint8_t* p, take(2, what));
    return load_le16(p);
  }
  Result<uint32_t> u32(std::string_view what) {
    ATTN_ASSIGN_OR_RETURN(const uint8_t* p, take(4, what));
    return load_le32(p);
  }
  Result<uint64_t> u64(std::string_view what) {
    ATTN_ASSIGN_OR_RETURN(const uint8_t* p, take(8, what));
    return load_le64(p);
  }
  Result<float> f32(std::string_view what) {
    ATTN_ASSIGN_OR_RETURN(uint32_t bits, u32(what));
    return std::bit_cast<float>(bits);
  }
  Result<double> f64(std::string_view what) {
    ATTN_ASSIGN_OR_RETURN(uint64_t bits, u64(what));
    return std::bit_cast<double>(bits);
  }

  // A GGUF string: uint64 byte length, then that many bytes (no terminator).
  // The length is checked against the bytes remaining before anything is allocated.
  Result<std::string> gguf_string(std::string_view what) {
    const uint64_t at = pos_;
    ATTN_ASSIGN_OR_RETURN(uint64_t len, u64(what));
    if (len > remaining()) {
      Error e = make_error("{}: truncated: string length {} at offset {} for {} runs past the end "
                           "of the file ({} bytes)",
                           source_, len, at, what, bytes_.size());
      return e;
    }
    const char* p = reinterpret_cast<const char*>(bytes_.data() + pos_);
    pos_ += len;
    return std::string(p, static_cast<size_t>(len));
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& source_;
  uint64_t pos_ = 0;
};

}  // namespace attnscope::io
