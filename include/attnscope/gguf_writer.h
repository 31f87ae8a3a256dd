// GGUF v3 writer: metadata in the order added, then tensor infos, then each tensor's
// data padded to the alignment (general.alignment if set, else 32). Layout: docs/gguf.md.
//
//   gguf::Writer w;
//   w.add_string("general.architecture", "llama");
//   w.add_uint32("llama.block_count", 3);
//   w.add_array("tokenizer.ggml.tokens", tokens);            // std::vector<std::string>
//   w.add_tensor("token_embd.weight", 0 /*F32*/, {{64, 32000}}, bytes);
//   ATTN_RETURN_IF_ERROR(w.write(path));
//
// The add_* calls never fail on the spot: the first problem (duplicate key or tensor
// name, a Value whose data does not match its type, a data span of the wrong size, ...)
// is kept and returned by status(), serialize() and write().
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/gguf.h"
#include "attnscope/result.h"

namespace attnscope::gguf {

// Value builders (the representation gguf.h documents: unsigned integers as uint64,
// signed as int64, floats as double).
Value make_uint8(uint8_t v);
Value make_int8(int8_t v);
Value make_uint16(uint16_t v);
Value make_int16(int16_t v);
Value make_uint32(uint32_t v);
Value make_int32(int32_t v);
Value make_uint64(uint64_t v);
Value make_int64(int64_t v);
Value make_float32(float v);
Value make_float64(double v);
Value make_bool(bool v);
Value make_string(std::string v);
// items must all have type elem_type (arrays of arrays may mix element types inside).
Value make_array(ValueType elem_type, std::vector<Value> items);

class Writer {
 public:
  // ---- Metadata ----
  void add_kv(std::string key, Value value);
  void add_uint8(std::string key, uint8_t v) { add_kv(std::move(key), make_uint8(v)); }
  void add_int8(std::string key, int8_t v) { add_kv(std::move(key), make_int8(v)); }
  void add_uint16(std::string key, uint16_t v) { add_kv(std::move(key), make_uint16(v)); }
  void add_int16(std::string key, int16_t v) { add_kv(std::move(key), make_int16(v)); }
  void add_uint32(std::string key, uint32_t v) { add_kv(std::move(key), make_uint32(v)); }
  void add_int32(std::string key, int32_t v) { add_kv(std::move(key), make_int32(v)); }
  void add_uint64(std::string key, uint64_t v) { add_kv(std::move(key), make_uint64(v)); }
  void add_int64(std::string key, int64_t v) { add_kv(std::move(key), make_int64(v)); }
  void add_float32(std::string key, float v) { add_kv(std::move(key), make_float32(v)); }
  void add_float64(std::string key, double v) { add_kv(std::move(key), make_float64(v)); }
  void add_bool(std::string key, bool v) { add_kv(std::move(key), make_bool(v)); }
  void add_string(std::string key, std::string v) { add_kv(std::move(key), make_string(std::move(v))); }

  // Arrays of one scalar type; nested arrays go through add_kv(key, make_array(...)).
  void add_array(std::string key, std::span<const uint8_t> v);
  void add_array(std::string key, std::span<const int8_t> v);
  void add_array(std::string key, std::span<const uint16_t> v);
  void add_array(std::string key, std::span<const int16_t> v);
  void add_array(std::string key, std::span<const uint32_t> v);
  void add_array(std::string key, std::span<const int32_t> v);
  void add_array(std::string key, std::span<const uint64_t> v);
  void add_array(std::string key, std::span<const int64_t> v);
  void add_array(std::string key, std::span<const float> v);
  void add_array(std::string key, std::span<const double> v);
  void add_array(std::string key, std::span<const std::string> v);

  // ---- Tensors ----
  // ne: 1 to 4 dimensions, ne[0] fastest-varying; data: exactly ggml_tensor_bytes(type, ne)
  // bytes. The data is not copied: it must stay valid until serialize() / write().
  void add_tensor(std::string name, uint32_t type, std::span<const uint64_t> ne,
                  std::span<const uint8_t> data);

  // The first error of the add_* calls, if any.
  Status status() const;
  // general.alignment if it was added (and valid), else 32.
  uint64_t alignment() const;

  // The whole file in memory.
  Result<std::vector<uint8_t>> serialize() const;
  // Streams the file to `path` through a temporary file in the same directory, then
  // renames it over `path`: a crash never leaves a partial file under the final name.
  Status write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    uint32_t type = 0;
    std::vector<uint64_t> ne;
    std::span<const uint8_t> data;
  };

  void fail(Error e);
  // Header, metadata, tensor infos and the padding up to the data section.
  Result<std::vector<uint8_t>> build_prefix() const;

  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
  std::set<std::string, std::less<>> keys_;
  std::set<std::string, std::less<>> tensor_names_;
  std::optional<Error> error_;
};

}  // namespace attnscope::gguf
