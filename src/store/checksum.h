// Checksums of the store format: xxHash (libxxhash), seed 0 throughout.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnscope::store {

uint64_t checksum64(const void* data, size_t size);  // XXH64
uint32_t checksum32(const void* data, size_t size);  // XXH32

// Incremental XXH64 over data given in pieces (index.bin's entries).
class Checksum64 {
 public:
  Checksum64();
  ~Checksum64();
  Checksum64(const Checksum64&) = delete;
  Checksum64& operator=(const Checksum64&) = delete;
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  void* state_;  // XXH64_state_t
};

}  // namespace attnscope::store
