// Read-only memory mapping of a whole file. Shared by the GGUF and safetensors
// readers: File::open() maps the path, hands bytes() to File::parse(), and keeps the
// mapping alive (shared_ptr) for as long as tensor pointers into it may be used.
//
// The mapping is MAP_PRIVATE + PROT_READ. If another process truncates the file
// while it is mapped, touching the lost pages raises SIGBUS; that is outside what a
// reader can check.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "attnscope/result.h"

namespace attnscope::gguf {

class MappedFile {
 public:
  // Errors: "cannot open <path>: <reason>", "<path>: is a directory",
  // "<path>: not a regular file", "<path>: file is empty".
  static Result<std::shared_ptr<const MappedFile>> open(const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }
  // Drops the whole pages inside [p, p + n) from this process's resident set
  // (madvise MADV_DONTNEED): the mapping is read-only, so a later read maps them in
  // again from the file. Bytes outside the mapping are left alone.
  void release(const void* p, uint64_t n) const;

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace attnscope::gguf
