// Helpers for the io tests: substring assertions on error messages, and hand-assembled
// GGUF bytes (RawGguf) so a test can build exactly the malformed file it needs (a
// wrong count, a bad offset, ...) without gguf::Writer, which refuses invalid input.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/result.h"

namespace attnscope::testing {

inline ::testing::AssertionResult AssertContains(const char* hay_expr, const char* needle_expr,
                                                 const std::string& hay, const std::string& needle) {
  if (hay.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << hay_expr << " does not contain " << needle_expr
                                       << "\n  text: " << hay << "\n  wanted: " << needle;
}

// EXPECT_CONTAINS(message, "expected 2 or 3")
#define EXPECT_CONTAINS(hay, needle) \
  EXPECT_PRED_FORMAT2(::attnscope::testing::AssertContains, hay, needle)

// A failed Result whose message contains every one of `parts`.
template <typename T>
::testing::AssertionResult FailsWith(const Result<T>& r, std::initializer_list<std::string_view> parts) {
  if (r.ok()) return ::testing::AssertionFailure() << "succeeded, expected an error";
  for (std::string_view p : parts) {
    if (r.error().message.find(p) == std::string::npos) {
      return ::testing::AssertionFailure() << "error \"" << r.error().message
                                           << "\" does not contain \"" << p << "\"";
    }
  }
  return ::testing::AssertionSuccess() << r.error().message;
}

struct RawGguf {
  std::vector<uint8_t> b;

  RawGguf& u8(uint8_t v) { b.push_back(v); return *this; }
  RawGguf& u16(uint16_t v) { for (int i = 0; i < 2; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  RawGguf& u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  RawGguf& u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  RawGguf& str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  RawGguf& raw(std::string_view s) { b.insert(b.end(), s.begin(), s.end()); return *this; }
  RawGguf& zeros(size_t n) { b.insert(b.end(), n, 0); return *this; }
  RawGguf& pad_to(size_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
    return *this;
  }

  // "GGUF", version, tensor count, metadata count.
  RawGguf& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    raw("GGUF");
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  // A key followed by its value type (the caller appends the value).
  RawGguf& key(std::string_view k, uint32_t type) {
    str(k);
    return u32(type);
  }
  RawGguf& kv_u32(std::string_view k, uint32_t v) { key(k, 4); return u32(v); }
  RawGguf& kv_str(std::string_view k, std::string_view v) { key(k, 8); return str(v); }
  RawGguf& tensor_info(std::string_view name, std::initializer_list<uint64_t> ne, uint32_t type,
                       uint64_t offset) {
    str(name);
    u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    u32(type);
    return u64(offset);
  }
};

}  // namespace attnscope::testing
