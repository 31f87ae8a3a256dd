#include "store/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace attnscope::store {

std::string path_join(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return fmt::format("{}{}", dir, name);
  return fmt::format("{}/{}", dir, name);
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

Status write_all(int fd, const void* data, size_t size, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("{}: write failed: {}", path, errno_text(errno));
    }
    if (n == 0) return make_error("{}: write failed: wrote 0 bytes", path);
    p += n;
    size -= static_cast<size_t>(n);
  }
  return ok_status();
}

Status pwrite_all(int fd, const void* data, size_t size, uint64_t offset, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("{}: write at offset {} failed: {}", path, offset, errno_text(errno));
    }
    if (n == 0) return make_error("{}: write at offset {} failed: wrote 0 bytes", path, offset);
    p += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return ok_status();
}

Status pread_all(int fd, void* data, size_t size, uint64_t offset, const std::string& path) {
  auto* p = static_cast<uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("{}: read at offset {} failed: {}", path, offset, errno_text(errno));
    }
    if (n == 0) {
      return make_error("{}: expected {} more bytes at offset {}, got the end of the file", path,
                        size, offset);
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return ok_status();
}

Status fsync_path_fd(int fd, const std::string& path) {
  if (::fsync(fd) != 0) return make_error("{}: fsync failed: {}", path, errno_text(errno));
  return ok_status();
}

Status fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error("{}: cannot open directory: {}", dir, errno_text(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return make_error("{}: fsync of the directory failed: {}", dir, errno_text(err));
  return ok_status();
}

Result<std::string> read_small_file(const std::string& path, uint64_t max_size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("{}: cannot open: {}", path, errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error("{}: cannot stat: {}", path, errno_text(err));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_size) {
    ::close(fd);
    return make_error("{}: {} bytes, expected at most {}", path, size, max_size);
  }
  std::string s(size, '\0');
  Status st_read = pread_all(fd, s.data(), s.size(), 0, path);
  ::close(fd);
  if (!st_read.ok()) return std::move(st_read).error();
  return s;
}

Status replace_file_atomically(const std::string& dir, std::string_view name,
                               std::string_view temp_name, std::string_view content) {
  const std::string tmp = path_join(dir, temp_name);
  const std::string dst = path_join(dir, name);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return make_error("{}: cannot create: {}", tmp, errno_text(errno));
  Status st = write_all(fd, content.data(), content.size(), tmp);
  if (st.ok()) st = fsync_path_fd(fd, tmp);
  close_fd(&fd);
  if (st.ok() && ::rename(tmp.c_str(), dst.c_str()) != 0) {
    st = make_error("{}: cannot rename to {}: {}", tmp, dst, errno_text(errno));
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return fsync_dir(dir);
}

void close_fd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

}  // namespace attnscope::store
