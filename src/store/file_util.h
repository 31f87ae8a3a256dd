// POSIX file helpers of the store: every failure is an Error naming the path and errno.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attnscope/result.h"

namespace attnscope::store {

std::string path_join(const std::string& dir, std::string_view name);
std::string errno_text(int err);  // "No space left on device"

// Writes all of data (retrying on EINTR and short writes).
Status write_all(int fd, const void* data, size_t size, const std::string& path);
Status pwrite_all(int fd, const void* data, size_t size, uint64_t offset, const std::string& path);
// Reads exactly size bytes at offset; reaching the end of the file first is an error.
Status pread_all(int fd, void* data, size_t size, uint64_t offset, const std::string& path);
Status fsync_path_fd(int fd, const std::string& path);
Status fsync_dir(const std::string& dir);

// The whole file (for manifest.json); `max_size` guards against a hostile size.
Result<std::string> read_small_file(const std::string& path, uint64_t max_size);

// Replaces dir/name by content: writes dir/temp_name, fsyncs it, renames it over
// dir/name, fsyncs dir. A crash leaves either the old or the new file.
Status replace_file_atomically(const std::string& dir, std::string_view name,
                               std::string_view temp_name, std::string_view content);

// Closes fd if it is open (>= 0) and sets it to -1.
void close_fd(int* fd);

}  // namespace attnscope::store
