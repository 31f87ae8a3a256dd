// GGUF reader (versions 2 and 3). The parser works on a byte span so that it can be
// fuzzed; File::open() memory-maps a path and hands the bytes to parse().
// Layout reference: docs/gguf.md.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "attnscope/result.h"

namespace attnscope::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5,
  kFloat32 = 6, kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11,
  kFloat64 = 12,
};

const char* value_type_name(ValueType type);

struct Value;

struct Array {
  ValueType elem_type = ValueType::kUint8;
  std::vector<Value> items;  // arrays may nest
};

// One metadata value. Integers of every width are held as int64 or uint64 (by
// signedness of the stored type), floats as double; `type` keeps the stored type.
struct Value {
  ValueType type = ValueType::kUint8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  // Integer value, if this is an integer type whose value fits in int64.
  std::optional<int64_t> as_int() const;
  // Numeric value (integer or float) as double.
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const Array* as_array() const;
};

struct TensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  std::array<uint64_t, 4> ne = {1, 1, 1, 1};  // ne[0] is the fastest-varying dimension
  uint32_t type = 0;                           // ggml type id (see ggml_type.h)
  uint64_t offset = 0;                         // relative to the start of the data section
  uint64_t n_bytes = 0;                        // checked to lie inside the file
  const uint8_t* data = nullptr;               // points into the mapped file

  uint64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class MappedFile;  // read-only mmap of a whole file (defined in src/io/mapped_file.h)

class File {
 public:
  // Parses a complete GGUF image. `source` names it in error messages (usually the path).
  // The bytes must outlive the File (open() ties them to the mapping).
  static Result<File> parse(std::span<const uint8_t> bytes, std::string source);
  // Memory-maps `path` and parses it.
  static Result<File> open(const std::string& path);

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return file_size_; }
  // Absolute file offset of the data section (tensor offsets are relative to it).
  uint64_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* find(std::string_view key) const;

  // Typed look-ups. The errors name the file and the key, and say expected vs actual type.
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<const Array*> get_array(std::string_view key) const;
  // Defaults for optional keys; a present key of the wrong type is still an error.
  Result<int64_t> get_int_or(std::string_view key, int64_t fallback) const;
  Result<double> get_float_or(std::string_view key, double fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;
  Result<std::string> get_string_or(std::string_view key, std::string fallback) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // Says that the tensor bytes [p, p + n) will not be read again soon: for a file from
  // open(), their whole pages leave the process's resident set (a later read maps them
  // in again from the file). A no-op for parse()d bytes and ranges outside the file.
  void release_pages(const void* p, uint64_t n) const;
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  std::string source_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t file_size_ = 0;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> key_index_;     // key -> index in metadata_
  std::map<std::string, size_t, std::less<>> tensor_index_;  // name -> index in tensors_
  std::shared_ptr<const MappedFile> mapping_;  // set by open(); keeps `data` pointers valid
};

}  // namespace attnscope::gguf
