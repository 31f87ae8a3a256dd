#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <system_error>

namespace attnscope::gguf {
namespace {

std::string errno_message(int err) { return std::error_code(err, std::generic_category()).message(); }

// Closes a descriptor on every return path.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<std::shared_ptr<const MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open {}: {}", path, errno_message(errno));
  FdGuard guard{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error("cannot stat {}: {}", path, errno_message(errno));
  if (S_ISDIR(st.st_mode)) return make_error("cannot open {}: is a directory", path);
  if (!S_ISREG(st.st_mode)) return make_error("cannot open {}: not a regular file", path);
  if (st.st_size <= 0) return make_error("cannot open {}: file is empty", path);
  if (static_cast<uint64_t>(st.st_size) > std::numeric_limits<size_t>::max()) {
    return make_error("cannot open {}: file of {} bytes does not fit in the address space", path,
                      st.st_size);
  }
  const size_t size = static_cast<size_t>(st.st_size);

  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (addr == MAP_FAILED) {
    return make_error("cannot map {} ({} bytes): {}", path, size, errno_message(errno));
  }
  // The mapping stays valid after the descriptor is closed.
  return std::shared_ptr<const MappedFile>(
      new MappedFile(path, static_cast<const uint8_t*>(addr), size));
}

void MappedFile::release(const void* p, uint64_t n) const {
  const auto begin = reinterpret_cast<uintptr_t>(p);
  const auto base = reinterpret_cast<uintptr_t>(data_);
  if (begin < base || begin - base > size_ || n > size_ - (begin - base)) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = (begin + n) / page * page;
  if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace attnscope::gguf
