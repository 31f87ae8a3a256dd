// safetensors reader: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the data.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/result.h"

namespace attnscope::safetensors {

struct Tensor {
  std::string name;
  std::string dtype;            // "F32", "F16", "BF16", "I32", "I64", "U8", ...
  std::vector<uint64_t> shape;  // row-major, outermost first (numpy order)
  std::span<const uint8_t> bytes;
};

class MappedFileHandle;

class File {
 public:
  static Result<File> parse(std::span<const uint8_t> bytes, std::string source);
  static Result<File> open(const std::string& path);

  const std::string& source() const { return source_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const Tensor* find(std::string_view name) const;

  // Copies a tensor out as float32 (from F32, F16 or BF16) / int32 (from I32 or I64).
  // Errors name the file and tensor and give expected vs actual dtype.
  Result<std::vector<float>> read_f32(std::string_view name) const;
  Result<std::vector<int32_t>> read_i32(std::string_view name) const;

 private:
  std::string source_;
  std::map<std::string, std::string> metadata_;
  std::vector<Tensor> tensors_;
  std::shared_ptr<const void> mapping_;
};

}  // namespace attnscope::safetensors
