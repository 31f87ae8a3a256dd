// GGUF v3 writer. Validates everything it is given, so that what it writes parses
// back with gguf::File::parse.
#include "attnscope/gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <system_error>

#include "attnscope/ggml_type.h"
#include "io/gguf_internal.h"

namespace attnscope::gguf {

// ---- Value builders ----
Value make_uint8(uint8_t v) { return Value{ValueType::kUint8, uint64_t{v}}; }
Value make_int8(int8_t v) { return Value{ValueType::kInt8, int64_t{v}}; }
Value make_uint16(uint16_t v) { return Value{ValueType::kUint16, uint64_t{v}}; }
Value make_int16(int16_t v) { return Value{ValueType::kInt16, int64_t{v}}; }
Value make_uint32(uint32_t v) { return Value{ValueType::kUint32, uint64_t{v}}; }
Value make_int32(int32_t v) { return Value{ValueType::kInt32, int64_t{v}}; }
Value make_uint64(uint64_t v) { return Value{ValueType::kUint64, v}; }
Value make_int64(int64_t v) { return Value{ValueType::kInt64, v}; }
Value make_float32(float v) { return Value{ValueType::kFloat32, double{v}}; }
Value make_float64(double v) { return Value{ValueType::kFloat64, v}; }
Value make_bool(bool v) { return Value{ValueType::kBool, v}; }
Value make_string(std::string v) { return Value{ValueType::kString, std::move(v)}; }
Value make_array(ValueType elem_type, std::vector<Value> items) {
  return Value{ValueType::kArray, Array{elem_type, std::move(items)}};
}

namespace {

constexpr size_t kMaxTensorName = 63;  // ggml's GGML_MAX_NAME (64) includes the terminator

// ---- Little-endian emitter ----
struct Out {
  std::vector<uint8_t>& b;
  void u8(uint8_t v) { b.push_back(v); }
  void u16(uint16_t v) { for (int i = 0; i < 2; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); }
  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); }
  void u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); }
  void str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
  }
};

// Integer payload of v as the stored type's range allows; nullopt when it does not fit.
std::optional<uint64_t> integer_bits(const Value& v) {
  int64_t lo = 0;
  uint64_t hi = 0;
  switch (v.type) {
    case ValueType::kUint8: hi = UINT8_MAX; break;
    case ValueType::kUint16: hi = UINT16_MAX; break;
    case ValueType::kUint32: hi = UINT32_MAX; break;
    case ValueType::kUint64: hi = UINT64_MAX; break;
    case ValueType::kInt8: lo = INT8_MIN; hi = INT8_MAX; break;
    case ValueType::kInt16: lo = INT16_MIN; hi = INT16_MAX; break;
    case ValueType::kInt32: lo = INT32_MIN; hi = INT32_MAX; break;
    case ValueType::kInt64: lo = INT64_MIN; hi = INT64_MAX; break;
    default: return std::nullopt;
  }
  if (const auto* u = std::get_if<uint64_t>(&v.data)) {
    if (*u > hi) return std::nullopt;
    return *u;
  }
  if (const auto* s = std::get_if<int64_t>(&v.data)) {
    if (*s < lo || (*s > 0 && static_cast<uint64_t>(*s) > hi)) return std::nullopt;
    return static_cast<uint64_t>(*s);  // two's complement; truncated to width on output
  }
  return std::nullopt;
}

// Checks that the data of v matches its type (recursively, bounded by kMaxArrayDepth).
Status check_value(const Value& v, std::string_view key, int depth) {
  if (!detail::is_valid_type(static_cast<uint32_t>(v.type))) {
    return make_error("gguf writer: metadata key '{}': unknown value type {}", key,
                      static_cast<uint32_t>(v.type));
  }
  const char* name = value_type_name(v.type);
  if (detail::is_integer(v.type)) {
    if (!std::holds_alternative<uint64_t>(v.data) && !std::holds_alternative<int64_t>(v.data)) {
      return make_error("gguf writer: metadata key '{}': data does not hold an integer for {}", key,
                        name);
    }
    if (!integer_bits(v)) {
      return make_error("gguf writer: metadata key '{}': value does not fit in {}", key, name);
    }
    return ok_status();
  }
  bool ok = false;
  switch (v.type) {
    case ValueType::kFloat32: case ValueType::kFloat64: ok = std::holds_alternative<double>(v.data); break;
    case ValueType::kBool: ok = std::holds_alternative<bool>(v.data); break;
    case ValueType::kString: ok = std::holds_alternative<std::string>(v.data); break;
    case ValueType::kArray: ok = std::holds_alternative<Array>(v.data); break;
    default: break;
  }
  if (!ok) return make_error("gguf writer: metadata key '{}': data does not hold a {}", key, name);
  if (v.type != ValueType::kArray) return ok_status();

  if (depth + 1 > detail::kMaxArrayDepth) {
    return make_error("gguf writer: metadata key '{}': arrays nested deeper than {} levels", key,
                      detail::kMaxArrayDepth);
  }
  const Array& a = std::get<Array>(v.data);
  if (!detail::is_valid_type(static_cast<uint32_t>(a.elem_type))) {
    return make_error("gguf writer: metadata key '{}': unknown array element type {}", key,
                      static_cast<uint32_t>(a.elem_type));
  }
  for (size_t i = 0; i < a.items.size(); ++i) {
    if (a.items[i].type != a.elem_type) {
      return make_error("gguf writer: metadata key '{}': array of {} has a {} at index {}", key,
                        value_type_name(a.elem_type), value_type_name(a.items[i].type), i);
    }
    ATTN_RETURN_IF_ERROR(check_value(a.items[i], key, depth + 1));
  }
  return ok_status();
}

// Writes a value already checked by check_value.
void put_value(Out& out, const Value& v) {
  switch (v.type) {
    case ValueType::kUint8: case ValueType::kInt8: out.u8(static_cast<uint8_t>(*integer_bits(v))); return;
    case ValueType::kUint16: case ValueType::kInt16: out.u16(static_cast<uint16_t>(*integer_bits(v))); return;
    case ValueType::kUint32: case ValueType::kInt32: out.u32(static_cast<uint32_t>(*integer_bits(v))); return;
    case ValueType::kUint64: case ValueType::kInt64: out.u64(*integer_bits(v)); return;
    case ValueType::kFloat32:
      out.u32(std::bit_cast<uint32_t>(static_cast<float>(std::get<double>(v.data))));
      return;
    case ValueType::kFloat64: out.u64(std::bit_cast<uint64_t>(std::get<double>(v.data))); return;
    case ValueType::kBool: out.u8(std::get<bool>(v.data) ? 1 : 0); return;
    case ValueType::kString: out.str(std::get<std::string>(v.data)); return;
    case ValueType::kArray: {
      const Array& a = std::get<Array>(v.data);
      out.u32(static_cast<uint32_t>(a.elem_type));
      out.u64(a.items.size());
      for (const Value& item : a.items) put_value(out, item);
      return;
    }
  }
}

template <typename T, typename Make>
Value array_of(ValueType elem, std::span<const T> values, Make make) {
  std::vector<Value> items;
  items.reserve(values.size());
  for (const T& v : values) items.push_back(make(v));
  return make_array(elem, std::move(items));
}

std::string errno_message(int err) { return std::error_code(err, std::generic_category()).message(); }

Status write_all(int fd, const uint8_t* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return make_error("cannot write {}: {}", path, errno_message(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return ok_status();
}

}  // namespace

// ---- Writer ----

void Writer::fail(Error e) {
  if (!error_) error_ = std::move(e);
}

void Writer::add_kv(std::string key, Value value) {
  if (auto s = check_value(value, key, 0); !s.ok()) return fail(std::move(s).error());
  if (key == "general.alignment") {
    if (value.type != ValueType::kUint32) {
      return fail(make_error("gguf writer: metadata key 'general.alignment': expected uint32, found {}",
                             detail::describe(value)));
    }
    if (!detail::is_power_of_two(*integer_bits(value))) {
      return fail(make_error("gguf writer: metadata key 'general.alignment': expected a nonzero power "
                             "of two, found {}",
                             *integer_bits(value)));
    }
  }
  if (!keys_.insert(key).second) {
    return fail(make_error("gguf writer: duplicate metadata key '{}'", key));
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

#define ATTN_WRITER_ARRAY(T, ELEM, MAKE)                                  \
  void Writer::add_array(std::string key, std::span<const T> v) {         \
    add_kv(std::move(key), array_of<T>(ValueType::ELEM, v, [](const T& x) { return MAKE(x); })); \
  }
ATTN_WRITER_ARRAY(uint8_t, kUint8, make_uint8)
ATTN_WRITER_ARRAY(int8_t, kInt8, make_int8)
ATTN_WRITER_ARRAY(uint16_t, kUint16, make_uint16)
ATTN_WRITER_ARRAY(int16_t, kInt16, make_int16)
ATTN_WRITER_ARRAY(uint32_t, kUint32, make_uint32)
ATTN_WRITER_ARRAY(int32_t, kInt32, make_int32)
ATTN_WRITER_ARRAY(uint64_t, kUint64, make_uint64)
ATTN_WRITER_ARRAY(int64_t, kInt64, make_int64)
ATTN_WRITER_ARRAY(float, kFloat32, make_float32)
ATTN_WRITER_ARRAY(double, kFloat64, make_float64)
ATTN_WRITER_ARRAY(std::string, kString, make_string)
#undef ATTN_WRITER_ARRAY

void Writer::add_tensor(std::string name, uint32_t type, std::span<const uint64_t> ne,
                        std::span<const uint8_t> data) {
  if (name.size() > kMaxTensorName) {
    return fail(make_error("gguf writer: tensor name '{}' is {} bytes, ggml allows at most {}", name,
                           name.size(), kMaxTensorName));
  }
  if (ne.empty() || ne.size() > 4) {
    return fail(make_error("gguf writer: tensor '{}': {} dimensions, expected 1 to 4", name, ne.size()));
  }
  if (ggml_type_info(type) == nullptr) {
    return fail(make_error("gguf writer: tensor '{}': unknown ggml type id {}", name, type));
  }
  uint64_t n_elements = 1;
  for (uint64_t d : ne) {
    if (d > static_cast<uint64_t>(INT64_MAX) ||
        (d != 0 && n_elements > static_cast<uint64_t>(INT64_MAX) / d)) {
      return fail(make_error("gguf writer: tensor '{}': element count overflows int64", name));
    }
    n_elements *= d;
  }
  auto bytes = ggml_tensor_bytes(type, ne);
  if (!bytes.ok()) {
    return fail(make_error("gguf writer: tensor '{}' ({}): {}", name, ggml_type_name(type),
                           bytes.error().message));
  }
  if (*bytes != data.size()) {
    return fail(make_error("gguf writer: tensor '{}' ({}, {} elements): expected {} bytes of data, "
                           "got {}",
                           name, ggml_type_name(type), n_elements, *bytes, data.size()));
  }
  if (!tensor_names_.insert(name).second) {
    return fail(make_error("gguf writer: duplicate tensor name '{}'", name));
  }
  tensors_.push_back(PendingTensor{std::move(name), type, {ne.begin(), ne.end()}, data});
}

Status Writer::status() const {
  if (error_) return *error_;
  return ok_status();
}

uint64_t Writer::alignment() const {
  for (const auto& [key, value] : kv_) {
    if (key == "general.alignment") return *integer_bits(value);  // validated by add_kv
  }
  return 32;
}

Result<std::vector<uint8_t>> Writer::build_prefix() const {
  ATTN_RETURN_IF_ERROR(status());
  const uint64_t align = alignment();
  std::vector<uint8_t> bytes;
  bytes.reserve(4096);  // also keeps g++ 12's -Wstringop-overflow false positive quiet at -O3
  Out out{bytes};
  for (char c : {'G', 'G', 'U', 'F'}) out.b.push_back(static_cast<uint8_t>(c));
  out.u32(3);
  out.u64(tensors_.size());
  out.u64(kv_.size());
  for (const auto& [key, value] : kv_) {
    out.str(key);
    out.u32(static_cast<uint32_t>(value.type));
    put_value(out, value);
  }
  uint64_t offset = 0;  // relative to the data section; each tensor padded to `align`
  for (const PendingTensor& t : tensors_) {
    out.str(t.name);
    out.u32(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) out.u64(d);
    out.u32(t.type);
    out.u64(offset);
    const uint64_t padded = (t.data.size() + align - 1) / align * align;
    if (padded < t.data.size() || offset > UINT64_MAX - padded) {
      return make_error("gguf writer: data section exceeds 64 bits at tensor '{}'", t.name);
    }
    offset += padded;
  }
  out.pad_to(align);
  return bytes;
}

Result<std::vector<uint8_t>> Writer::serialize() const {
  ATTN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, build_prefix());
  const uint64_t align = alignment();
  Out out{bytes};
  for (const PendingTensor& t : tensors_) {
    bytes.insert(bytes.end(), t.data.begin(), t.data.end());
    out.pad_to(align);
  }
  return bytes;
}

Status Writer::write(const std::string& path) const {
  ATTN_ASSIGN_OR_RETURN(std::vector<uint8_t> prefix, build_prefix());
  const uint64_t align = alignment();

  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return make_error("cannot create a temporary file next to {}: {}", path, errno_message(errno));
  auto fail_with = [&](Error e) -> Status {
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd, 0644) != 0) {
    return fail_with(make_error("cannot chmod {}: {}", tmp, errno_message(errno)));
  }
  if (auto s = write_all(fd, prefix.data(), prefix.size(), tmp); !s.ok()) return fail_with(std::move(s).error());
  static const uint8_t kZeros[256] = {};
  for (const PendingTensor& t : tensors_) {
    if (auto s = write_all(fd, t.data.data(), t.data.size(), tmp); !s.ok()) {
      return fail_with(std::move(s).error());
    }
    uint64_t pad = (align - t.data.size() % align) % align;
    while (pad > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof(kZeros)));
      if (auto s = write_all(fd, kZeros, n, tmp); !s.ok()) return fail_with(std::move(s).error());
      pad -= n;
    }
  }
  if (::fsync(fd) != 0) return fail_with(make_error("cannot sync {}: {}", tmp, errno_message(errno)));
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return make_error("cannot close {}: {}", tmp, errno_message(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return make_error("cannot rename {} to {}: {}", tmp, path, errno_message(err));
  }
  return ok_status();
}

}  // namespace attnscope::gguf
