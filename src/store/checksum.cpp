#include "store/checksum.h"

#include <xxhash.h>

namespace attnscope::store {

uint64_t checksum64(const void* data, size_t size) { return XXH64(data, size, 0); }
uint32_t checksum32(const void* data, size_t size) { return XXH32(data, size, 0); }

Checksum64::Checksum64() : state_(XXH64_createState()) {
  XXH64_reset(static_cast<XXH64_state_t*>(state_), 0);
}
Checksum64::~Checksum64() { XXH64_freeState(static_cast<XXH64_state_t*>(state_)); }

void Checksum64::update(const void* data, size_t size) {
  XXH64_update(static_cast<XXH64_state_t*>(state_), data, size);
}
uint64_t Checksum64::digest() const { return XXH64_digest(static_cast<XXH64_state_t*>(state_)); }

}  // namespace attnscope::store
