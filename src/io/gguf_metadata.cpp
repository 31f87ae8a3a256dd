// Typed metadata look-ups on a parsed GGUF file. Errors read
//   "<file>: metadata key 'llama.block_count': expected an integer, found string".
#include <limits>

#include "attnscope/gguf.h"
#include "io/gguf_internal.h"

namespace attnscope::gguf {
namespace {

Error missing(const std::string& source, std::string_view key) {
  return make_error("{}: metadata key '{}' not found", source, key);
}

Error wrong_type(const std::string& source, std::string_view key, std::string_view expected,
                 const Value& v) {
  return make_error("{}: metadata key '{}': expected {}, found {}", source, key, expected,
                    detail::describe(v));
}

Result<int64_t> to_int(const std::string& source, std::string_view key, const Value& v) {
  if (!detail::is_integer(v.type)) return wrong_type(source, key, "an integer", v);
  if (auto x = v.as_int()) return *x;
  if (const auto* u = std::get_if<uint64_t>(&v.data)) {
    return make_error("{}: metadata key '{}': {} value {} does not fit in int64", source, key,
                      value_type_name(v.type), *u);
  }
  return make_error("{}: metadata key '{}': malformed {} value", source, key, value_type_name(v.type));
}

Result<double> to_float(const std::string& source, std::string_view key, const Value& v) {
  if (auto x = v.as_float()) return *x;
  return wrong_type(source, key, "a number", v);
}

Result<bool> to_bool(const std::string& source, std::string_view key, const Value& v) {
  if (auto x = v.as_bool()) return *x;
  return wrong_type(source, key, "a bool", v);
}

Result<std::string> to_string(const std::string& source, std::string_view key, const Value& v) {
  if (const std::string* s = v.as_string()) return *s;
  return wrong_type(source, key, "a string", v);
}

}  // namespace

Result<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(source_, key);
  return to_int(source_, key, *v);
}

Result<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(source_, key);
  return to_float(source_, key, *v);
}

Result<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(source_, key);
  return to_bool(source_, key, *v);
}

Result<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(source_, key);
  return to_string(source_, key, *v);
}

Result<const Array*> File::get_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(source_, key);
  if (const Array* a = v->as_array()) return a;
  return wrong_type(source_, key, "an array", *v);
}

Result<int64_t> File::get_int_or(std::string_view key, int64_t fallback) const {
  const Value* v = find(key);
  if (v == nullptr) return fallback;
  return to_int(source_, key, *v);
}

Result<double> File::get_float_or(std::string_view key, double fallback) const {
  const Value* v = find(key);
  if (v == nullptr) return fallback;
  return to_float(source_, key, *v);
}

Result<bool> File::get_bool_or(std::string_view key, bool fallback) const {
  const Value* v = find(key);
  if (v == nullptr) return fallback;
  return to_bool(source_, key, *v);
}

Result<std::string> File::get_string_or(std::string_view key, std::string fallback) const {
  const Value* v = find(key);
  if (v == nullptr) return fallback;
  return to_string(source_, key, *v);
}

}  // namespace attnscope::gguf
