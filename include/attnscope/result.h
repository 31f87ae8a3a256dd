// Errors are values: every fallible library call returns Result<T> (or Status),
// whose message names the file or tensor and says expected vs actual.
// Only main() and HTTP handlers turn an Error into an exit or status code.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace attnscope {

struct Error {
  std::string message;
};

// Builds an Error with fmt-style formatting: make_error("{}: expected {}, got {}", f, a, b).
template <typename... Args>
Error make_error(fmt::format_string<Args...> format, Args&&... args) {
  return Error{fmt::format(format, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

}  // namespace attnscope

#define ATTN_CONCAT_INNER(a, b) a##b
#define ATTN_CONCAT(a, b) ATTN_CONCAT_INNER(a, b)

// Returns the error of a Status/Result expression from the enclosing function.
#define ATTN_RETURN_IF_ERROR(expr)                          \
  do {                                                      \
    auto&& attn_status_ = (expr);                           \
    if (!attn_status_.ok()) return std::move(attn_status_).error(); \
  } while (0)

// ATTN_ASSIGN_OR_RETURN(auto x, f()); declares x from a Result or returns its error.
#define ATTN_ASSIGN_OR_RETURN(lhs, expr) \
  ATTN_ASSIGN_OR_RETURN_IMPL(ATTN_CONCAT(attn_result_, __LINE__), lhs, expr)
#define ATTN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).error();    \
  lhs = std::move(tmp).value()
