// Streaming safetensors writer: declare every tensor (name, dtype, shape) and the
// metadata first, then append each tensor's bytes in declaration order, in as many
// pieces as convenient. Nothing but a small buffer is held in memory, so files far
// larger than RAM can be written. Layout (the safetensors spec):
//
//   [u64 LE N] [N bytes: JSON header, space-padded to a multiple of 8] [data section]
//
// The header is {"__metadata__": {key: string}, name: {"dtype", "shape", "data_offsets"}}
// with the metadata first and the tensors in declaration order; the data section holds
// the tensors back to back in the same order (data_offsets are relative to its start).
// The spec does not require sorted names, and readers (the Rust/Python package,
// safetensors::File) only require the offsets to tile the data section exactly.
//
//   safetensors::Writer w;
//   w.add_metadata("prompt", prompt);
//   w.add_tensor("tokens", Dtype::kI32, {n});
//   w.add_tensor("attn.0", Dtype::kF16, {n_heads, n, n});
//   ATTN_RETURN_IF_ERROR(w.open(path));              // header -> <path>.tmp-XXXXXX
//   ATTN_RETURN_IF_ERROR(w.append_i32("tokens", ids));
//   for (...) ATTN_RETURN_IF_ERROR(w.append_floats("attn.0", head));  // converted to F16
//   ATTN_RETURN_IF_ERROR(w.finish());                // checks sizes, fsyncs, renames
//
// The add_* calls never fail on the spot: the first problem (duplicate or reserved
// name, invalid UTF-8, a size overflow) is kept and returned by status() and open().
// After open(), every error names the file, the tensor, and expected vs actual bytes;
// the first error is sticky and removes the temporary file. A Writer destroyed before
// finish() succeeded removes its temporary file: a partial file never appears under
// the final name.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "attnscope/result.h"

namespace attnscope::safetensors {

enum class Dtype : uint8_t { kF32, kF16, kBF16, kI32, kI64, kU8 };
const char* dtype_name(Dtype d);  // "F32", "F16", "BF16", "I32", "I64", "U8"
uint64_t dtype_size(Dtype d);     // bytes per element

// The Python/Rust reader refuses headers larger than this.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

class Writer {
 public:
  Writer() = default;
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // ---- Declarations (before open) ----
  void add_metadata(std::string key, std::string value);
  // shape: row-major, outermost first (numpy order); {} is a scalar (one element).
  void add_tensor(std::string name, Dtype dtype, std::vector<uint64_t> shape);

  // The first error of the add_* calls, if any.
  Status status() const;
  // The 8-byte length, the JSON header and its padding.
  Result<std::vector<uint8_t>> header() const;
  uint64_t data_bytes() const;  // size of the data section (sum of all tensors)

  // ---- Streaming (open, append..., finish) ----
  // Creates <path>.tmp-XXXXXX in the same directory and writes the header.
  Status open(const std::string& path);
  // The next bytes of `tensor`, which must be the first declared tensor not yet
  // complete (zero-byte tensors are skipped automatically).
  Status append(std::string_view tensor, std::span<const uint8_t> bytes);
  // Values converted to the tensor's dtype: F32, F16 or BF16 (round to nearest even).
  Status append_floats(std::string_view tensor, std::span<const float> values);
  // Values stored as the tensor's dtype: I32 or I64.
  Status append_i32(std::string_view tensor, std::span<const int32_t> values);
  // Checks that every tensor received all its bytes, syncs, and renames over `path`.
  Status finish();

  uint64_t bytes_written() const { return written_; }  // header included
  uint64_t file_size() const;                         // when complete

 private:
  struct Declared {
    std::string name;
    Dtype dtype;
    std::vector<uint64_t> shape;
    uint64_t n_bytes = 0;
  };

  void fail_declaration(Error e);
  Status fail(Error e);  // sticky; closes and removes the temporary file
  // The tensor that `tensor` names, if it is the one expecting data next.
  Result<const Declared*> expect(std::string_view tensor, uint64_t n_bytes);
  Status write_out(const uint8_t* p, size_t n);
  Status flush();
  void skip_empty();
  void discard();

  std::vector<std::pair<std::string, std::string>> metadata_;
  std::vector<Declared> tensors_;
  std::set<std::string, std::less<>> names_;
  std::set<std::string, std::less<>> keys_;
  std::optional<Error> error_;
  uint64_t data_bytes_ = 0;
  uint64_t header_bytes_ = 0;

  std::string path_, tmp_path_;
  int fd_ = -1;
  bool finished_ = false;
  size_t current_ = 0;         // index of the tensor receiving data
  uint64_t current_done_ = 0;  // bytes of it received
  uint64_t written_ = 0;
  std::vector<uint8_t> buffer_;
};

}  // namespace attnscope::safetensors
