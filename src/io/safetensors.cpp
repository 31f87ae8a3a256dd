// safetensors reader. Layout:
//   [u64 LE header length N] [N bytes of JSON header] [data section]
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the start of the data section) and may hold "__metadata__",
// a map of strings to strings.
#include "attnscope/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "attnscope/quant.h"
#include "io/byte_reader.h"
#include "io/mapped_file.h"

namespace attnscope::safetensors {
namespace {

using Json = nlohmann::json;

// Element sizes of the safetensors dtypes (sub-byte float formats are not supported).
uint64_t dtype_size(std::string_view dtype) {
  struct Entry { std::string_view name; uint64_t size; };
  static constexpr Entry kDtypes[] = {
      {"BOOL", 1}, {"U8", 1},   {"I8", 1},   {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2},  {"F16", 2},  {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"F64", 8},  {"I64", 8},  {"U64", 8},
  };
  for (const Entry& e : kDtypes) {
    if (e.name == dtype) return e.size;
  }
  return 0;
}

std::string format_shape(const std::vector<uint64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return out + "]";
}

// For error messages; never throws (invalid UTF-8 is replaced).
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A JSON value as a non-negative integer, if it is one.
std::optional<uint64_t> as_u64(const Json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v >= 0) return static_cast<uint64_t>(v);
  }
  return std::nullopt;
}

Result<Tensor> parse_entry(const std::string& src, const std::string& name, const Json& entry,
                           std::span<const uint8_t> data, uint64_t data_start) {
  if (!entry.is_object()) {
    return make_error("{}: tensor '{}': header entry is a {}, expected an object", src, name,
                      entry.type_name());
  }
  Tensor t;
  t.name = name;
  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) {
    return make_error("{}: tensor '{}': missing string field 'dtype'", src, name);
  }
  t.dtype = dtype->get<std::string>();
  const uint64_t elem_size = dtype_size(t.dtype);
  if (elem_size == 0) return make_error("{}: tensor '{}': unsupported dtype '{}'", src, name, t.dtype);

  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) {
    return make_error("{}: tensor '{}': missing array field 'shape'", src, name);
  }
  uint64_t n_bytes = elem_size;
  bool overflow = false;
  for (const Json& d : *shape) {
    auto dim = as_u64(d);
    if (!dim) return make_error("{}: tensor '{}': shape entry {} is not a non-negative integer", src, name, dump(d));
    t.shape.push_back(*dim);
    if (*dim != 0 && n_bytes > std::numeric_limits<uint64_t>::max() / *dim) overflow = true;
    if (!overflow) n_bytes *= *dim;
  }
  if (overflow) {
    return make_error("{}: tensor '{}': {} x {} bytes overflows 64 bits", src, name,
                      format_shape(t.shape), elem_size);
  }

  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
    return make_error("{}: tensor '{}': missing field 'data_offsets' = [begin, end]", src, name);
  }
  auto begin = as_u64((*offsets)[0]);
  auto end = as_u64((*offsets)[1]);
  if (!begin || !end || *begin > *end) {
    return make_error("{}: tensor '{}': bad data_offsets {}", src, name, dump(*offsets));
  }
  if (*end - *begin != n_bytes) {
    return make_error("{}: tensor '{}': {} {} needs {} bytes, data_offsets [{}, {}) hold {}", src,
                      name, t.dtype, format_shape(t.shape), n_bytes, *begin, *end, *end - *begin);
  }
  if (*end > data.size()) {
    return make_error("{}: tensor '{}' data [{}, {}) extends past the end of the file ({} bytes)",
                      src, name, data_start + *begin, data_start + *end, data_start + data.size());
  }
  t.bytes = data.subspan(static_cast<size_t>(*begin), static_cast<size_t>(n_bytes));
  return t;
}

}  // namespace

Result<File> File::parse(std::span<const uint8_t> bytes, std::string source) {
  File f;
  f.source_ = std::move(source);
  const std::string& src = f.source_;
  io::ByteReader r(bytes, f.source_);
  ATTN_ASSIGN_OR_RETURN(uint64_t header_len, r.u64("header length"));
  if (header_len > r.remaining()) {
    return make_error("{}: truncated: header length {} runs past the end of the file ({} bytes); "
                      "not a safetensors file?",
                      src, header_len, bytes.size());
  }
  ATTN_ASSIGN_OR_RETURN(const uint8_t* header_bytes, r.take(header_len, "header"));
  const uint64_t data_start = r.offset();
  const std::span<const uint8_t> data = bytes.subspan(static_cast<size_t>(data_start));

  Json header = Json::parse(header_bytes, header_bytes + header_len, nullptr,
                            /*allow_exceptions=*/false);
  if (header.is_discarded()) return make_error("{}: header is not valid JSON", src);
  if (!header.is_object()) {
    return make_error("{}: header is a JSON {}, expected an object", src, header.type_name());
  }

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        return make_error("{}: __metadata__ is a {}, expected an object of strings", src,
                          entry.type_name());
      }
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          return make_error("{}: __metadata__ key '{}': expected a string, found {}", src, key,
                            value.type_name());
        }
        f.metadata_.emplace(key, value.get<std::string>());
      }
      continue;
    }
    ATTN_ASSIGN_OR_RETURN(Tensor t, parse_entry(src, name, entry, data, data_start));
    f.tensors_.push_back(std::move(t));
  }
  // File order (JSON objects come back sorted by name).
  std::stable_sort(f.tensors_.begin(), f.tensors_.end(), [](const Tensor& a, const Tensor& b) {
    return a.bytes.data() < b.bytes.data();
  });
  return f;
}

Result<File> File::open(const std::string& path) {
  ATTN_ASSIGN_OR_RETURN(std::shared_ptr<const gguf::MappedFile> mapping, gguf::MappedFile::open(path));
  ATTN_ASSIGN_OR_RETURN(File f, parse(mapping->bytes(), path));
  f.mapping_ = std::move(mapping);
  return f;
}

const Tensor* File::find(std::string_view name) const {
  for (const Tensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<std::vector<float>> File::read_f32(std::string_view name) const {
  const Tensor* t = find(name);
  if (t == nullptr) return make_error("{}: tensor '{}' not found", source_, name);
  const uint8_t* p = t->bytes.data();
  std::vector<float> out;
  if (t->dtype == "F32") {
    out.resize(t->bytes.size() / 4);
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::bit_cast<float>(io::load_le32(p + 4 * i));
  } else if (t->dtype == "F16") {
    out.resize(t->bytes.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) out[i] = quant::f16_to_f32(io::load_le16(p + 2 * i));
  } else if (t->dtype == "BF16") {
    out.resize(t->bytes.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = quant::bf16_to_f32(io::load_le16(p + 2 * i));
    }
  } else {
    return make_error("{}: tensor '{}': expected dtype F32, F16 or BF16, found {}", source_, name,
                      t->dtype);
  }
  return out;
}

Result<std::vector<int32_t>> File::read_i32(std::string_view name) const {
  const Tensor* t = find(name);
  if (t == nullptr) return make_error("{}: tensor '{}' not found", source_, name);
  const uint8_t* p = t->bytes.data();
  std::vector<int32_t> out;
  if (t->dtype == "I32") {
    out.resize(t->bytes.size() / 4);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int32_t>(io::load_le32(p + 4 * i));
  } else if (t->dtype == "I64") {
    out.resize(t->bytes.size() / 8);
    for (size_t i = 0; i < out.size(); ++i) {
      const auto v = static_cast<int64_t>(io::load_le64(p + 8 * i));
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
        return make_error("{}: tensor '{}': I64 value {} at index {} does not fit in int32", source_,
                          name, v, i);
      }
      out[i] = static_cast<int32_t>(v);
    }
  } else {
    return make_error("{}: tensor '{}': expected dtype I32 or I64, found {}", source_, name, t->dtype);
  }
  return out;
}

}  // namespace attnscope::safetensors
