// GGUF metadata values: type names, Value accessors, and the value decoder.
#include <limits>

#include "attnscope/gguf.h"
#include "io/gguf_internal.h"

namespace attnscope::gguf {

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kUint8: return "uint8";
    case ValueType::kInt8: return "int8";
    case ValueType::kUint16: return "uint16";
    case ValueType::kInt16: return "int16";
    case ValueType::kUint32: return "uint32";
    case ValueType::kInt32: return "int32";
    case ValueType::kFloat32: return "float32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "uint64";
    case ValueType::kInt64: return "int64";
    case ValueType::kFloat64: return "float64";
  }
  return "unknown";
}

std::optional<int64_t> Value::as_int() const {
  if (!detail::is_integer(type)) return std::nullopt;
  if (const auto* s = std::get_if<int64_t>(&data)) return *s;
  if (const auto* u = std::get_if<uint64_t>(&data)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  return std::nullopt;
}

std::optional<double> Value::as_float() const {
  if (type == ValueType::kFloat32 || type == ValueType::kFloat64) {
    if (const auto* d = std::get_if<double>(&data)) return *d;
    return std::nullopt;
  }
  if (!detail::is_integer(type)) return std::nullopt;
  if (const auto* s = std::get_if<int64_t>(&data)) return static_cast<double>(*s);
  if (const auto* u = std::get_if<uint64_t>(&data)) return static_cast<double>(*u);
  return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
  if (type != ValueType::kBool) return std::nullopt;
  if (const auto* b = std::get_if<bool>(&data)) return *b;
  return std::nullopt;
}

const std::string* Value::as_string() const {
  return type == ValueType::kString ? std::get_if<std::string>(&data) : nullptr;
}

const Array* Value::as_array() const {
  return type == ValueType::kArray ? std::get_if<Array>(&data) : nullptr;
}

namespace detail {

bool is_valid_type(uint32_t type) { return type <= static_cast<uint32_t>(ValueType::kFloat64); }

uint64_t scalar_size(ValueType type) {
  switch (type) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    case ValueType::kString: case ValueType::kArray: return 0;
  }
  return 0;
}

uint64_t min_encoded_size(ValueType type) {
  if (type == ValueType::kString) return 8;      // length
  if (type == ValueType::kArray) return 4 + 8;   // element type, count
  return scalar_size(type);
}

bool is_integer(ValueType type) {
  switch (type) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16:
    case ValueType::kInt16: case ValueType::kUint32: case ValueType::kInt32:
    case ValueType::kUint64: case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool is_signed_integer(ValueType type) {
  return type == ValueType::kInt8 || type == ValueType::kInt16 || type == ValueType::kInt32 ||
         type == ValueType::kInt64;
}

std::string describe(const Value& value) {
  std::string out;
  const Value* v = &value;
  // Iterative: the element type of a nested array is only known from its items, and
  // the nesting is bounded by kMaxArrayDepth for parsed values.
  while (const Array* a = v->as_array()) {
    out += "array of ";
    if (a->elem_type != ValueType::kArray || a->items.empty()) {
      out += value_type_name(a->elem_type);
      return out;
    }
    v = &a->items.front();
  }
  out += value_type_name(v->type);
  return out;
}

Result<Value> read_value(io::ByteReader& r, ValueType type, std::string_view what, int depth,
                         uint64_t& values_left) {
  Value v;
  v.type = type;
  switch (type) {
    case ValueType::kUint8: {
      ATTN_ASSIGN_OR_RETURN(uint8_t x, r.u8(what));
      v.data = uint64_t{x};
      return v;
    }
    case ValueType::kInt8: {
      ATTN_ASSIGN_OR_RETURN(uint8_t x, r.u8(what));
      v.data = int64_t{static_cast<int8_t>(x)};
      return v;
    }
    case ValueType::kUint16: {
      ATTN_ASSIGN_OR_RETURN(uint16_t x, r.u16(what));
      v.data = uint64_t{x};
      return v;
    }
    case ValueType::kInt16: {
      ATTN_ASSIGN_OR_RETURN(uint16_t x, r.u16(what));
      v.data = int64_t{static_cast<int16_t>(x)};
      return v;
    }
    case ValueType::kUint32: {
      ATTN_ASSIGN_OR_RETURN(uint32_t x, r.u32(what));
      v.data = uint64_t{x};
      return v;
    }
    case ValueType::kInt32: {
      ATTN_ASSIGN_OR_RETURN(uint32_t x, r.u32(what));
      v.data = int64_t{static_cast<int32_t>(x)};
      return v;
    }
    case ValueType::kUint64: {
      ATTN_ASSIGN_OR_RETURN(uint64_t x, r.u64(what));
      v.data = x;
      return v;
    }
    case ValueType::kInt64: {
      ATTN_ASSIGN_OR_RETURN(uint64_t x, r.u64(what));
      v.data = static_cast<int64_t>(x);
      return v;
    }
    case ValueType::kFloat32: {
      ATTN_ASSIGN_OR_RETURN(float x, r.f32(what));
      v.data = double{x};
      return v;
    }
    case ValueType::kFloat64: {
      ATTN_ASSIGN_OR_RETURN(double x, r.f64(what));
      v.data = x;
      return v;
    }
    case ValueType::kBool: {
      const uint64_t at = r.offset();
      ATTN_ASSIGN_OR_RETURN(uint8_t x, r.u8(what));
      if (x > 1) {
        return make_error("{}: {}: bool at offset {} is {}, expected 0 or 1", r.source(), what, at,
                          x);
      }
      v.data = x == 1;
      return v;
    }
    case ValueType::kString: {
      ATTN_ASSIGN_OR_RETURN(std::string s, r.gguf_string(what));
      v.data = std::move(s);
      return v;
    }
    case ValueType::kArray:
      break;
  }
  if (type != ValueType::kArray) {
    return make_error("{}: {}: unknown value type {}", r.source(), what, static_cast<uint32_t>(type));
  }

  if (depth + 1 > kMaxArrayDepth) {
    return make_error("{}: {}: arrays nested deeper than {} levels at offset {}", r.source(), what,
                      kMaxArrayDepth, r.offset());
  }
  const uint64_t type_at = r.offset();
  ATTN_ASSIGN_OR_RETURN(uint32_t elem_raw, r.u32(what));
  if (!is_valid_type(elem_raw)) {
    return make_error("{}: {}: unknown array element type {} at offset {} (expected 0 to 12)",
                      r.source(), what, elem_raw, type_at);
  }
  const auto elem = static_cast<ValueType>(elem_raw);
  const uint64_t count_at = r.offset();
  ATTN_ASSIGN_OR_RETURN(uint64_t count, r.u64(what));
  // Every element takes at least min_encoded_size bytes: reject impossible counts
  // before reserving memory for them.
  const uint64_t min_size = min_encoded_size(elem);
  if (count > r.remaining() / min_size) {
    return make_error("{}: truncated: array count {} at offset {} for {} needs at least {} bytes "
                      "per {} element, but only {} bytes remain (file has {})",
                      r.source(), count, count_at, what, min_size, value_type_name(elem),
                      r.remaining(), r.size());
  }
  if (count > values_left) {
    return make_error("{}: {}: array count {} at offset {} exceeds the limit of {} metadata values "
                      "per file",
                      r.source(), what, count, count_at, kMaxMetadataValues);
  }
  values_left -= count;
  Array array;
  array.elem_type = elem;
  array.items.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    ATTN_ASSIGN_OR_RETURN(Value item, read_value(r, elem, what, depth + 1, values_left));
    array.items.push_back(std::move(item));
  }
  v.data = std::move(array);
  return v;
}

}  // namespace detail
}  // namespace attnscope::gguf
