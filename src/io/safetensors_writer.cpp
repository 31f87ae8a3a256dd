// Streaming safetensors writer (layout in include/attnscope/safetensors_writer.h).
// Every size is checked before it is written, so what it writes parses back with
// safetensors::File::parse and with the reference (Rust/Python) implementation.
#include "attnscope/safetensors_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <system_error>

#include <nlohmann/json.hpp>

#include "attnscope/quant.h"

namespace attnscope::safetensors {
namespace {

constexpr size_t kBufferBytes = size_t{1} << 20;
constexpr size_t kConvertChunk = 4096;  // values converted per step

std::string errno_message(int err) { return std::error_code(err, std::generic_category()).message(); }

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  const uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

void store_le16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void store_le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

std::string format_shape(const std::vector<uint64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return out + "]";
}

}  // namespace

const char* dtype_name(Dtype d) {
  switch (d) {
    case Dtype::kF32: return "F32";
    case Dtype::kF16: return "F16";
    case Dtype::kBF16: return "BF16";
    case Dtype::kI32: return "I32";
    case Dtype::kI64: return "I64";
    case Dtype::kU8: return "U8";
  }
  return "?";
}

uint64_t dtype_size(Dtype d) {
  switch (d) {
    case Dtype::kF32: case Dtype::kI32: return 4;
    case Dtype::kF16: case Dtype::kBF16: return 2;
    case Dtype::kI64: return 8;
    case Dtype::kU8: return 1;
  }
  return 0;
}

Writer::~Writer() { discard(); }

// ---- Declarations ----

void Writer::fail_declaration(Error e) {
  if (!error_) error_ = std::move(e);
}

void Writer::add_metadata(std::string key, std::string value) {
  if (fd_ >= 0 || finished_) {
    return fail_declaration(make_error("metadata key '{}' added after open()", key));
  }
  if (!valid_utf8(key) || !valid_utf8(value)) {
    return fail_declaration(make_error("metadata key '{}': the key or value is not valid UTF-8", key));
  }
  if (!keys_.insert(key).second) return fail_declaration(make_error("duplicate metadata key '{}'", key));
  metadata_.emplace_back(std::move(key), std::move(value));
}

void Writer::add_tensor(std::string name, Dtype dtype, std::vector<uint64_t> shape) {
  if (fd_ >= 0 || finished_) return fail_declaration(make_error("tensor '{}' declared after open()", name));
  if (name.empty()) return fail_declaration(make_error("a tensor name is empty"));
  if (name == "__metadata__") return fail_declaration(make_error("tensor name '__metadata__' is reserved"));
  if (!valid_utf8(name)) return fail_declaration(make_error("tensor name '{}' is not valid UTF-8", name));
  if (dtype_size(dtype) == 0) {
    return fail_declaration(make_error("tensor '{}': unknown dtype {}", name, static_cast<int>(dtype)));
  }
  uint64_t n_bytes = dtype_size(dtype);
  for (uint64_t d : shape) {
    if (d != 0 && n_bytes > std::numeric_limits<uint64_t>::max() / d) {
      return fail_declaration(make_error("tensor '{}': {} {} overflows 64 bits", name, dtype_name(dtype),
                                         format_shape(shape)));
    }
    n_bytes *= d;
  }
  if (data_bytes_ > std::numeric_limits<uint64_t>::max() - n_bytes) {
    return fail_declaration(make_error("tensor '{}': the data section overflows 64 bits", name));
  }
  if (!names_.insert(name).second) return fail_declaration(make_error("duplicate tensor name '{}'", name));
  data_bytes_ += n_bytes;
  tensors_.push_back(Declared{std::move(name), dtype, std::move(shape), n_bytes});
}

Status Writer::status() const {
  if (error_) return *error_;
  return ok_status();
}

Result<std::vector<uint8_t>> Writer::header() const {
  ATTN_RETURN_IF_ERROR(status());
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata_) meta[key] = value;
    j["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const Declared& t : tensors_) {
    j[t.name] = {{"dtype", dtype_name(t.dtype)},
                 {"shape", t.shape},
                 {"data_offsets", {offset, offset + t.n_bytes}}};
    offset += t.n_bytes;
  }
  // Validated UTF-8 throughout, so the replace handler never fires (and never throws).
  std::string text = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes) {
    return make_error("the JSON header is {} bytes; safetensors readers accept at most {}", text.size(),
                      kMaxHeaderBytes);
  }
  std::vector<uint8_t> out(8 + text.size());
  store_le64(out.data(), text.size());
  std::memcpy(out.data() + 8, text.data(), text.size());
  return out;
}

uint64_t Writer::data_bytes() const { return data_bytes_; }

uint64_t Writer::file_size() const { return header_bytes_ + data_bytes_; }

// ---- Streaming ----

void Writer::discard() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_path_.c_str());
  }
}

Status Writer::fail(Error e) {
  discard();
  if (!error_) error_ = std::move(e);
  return *error_;
}

Status Writer::open(const std::string& path) {
  if (fd_ >= 0 || finished_) return make_error("{}: safetensors writer already opened", path);
  path_ = path;
  auto head = header();
  if (!head.ok()) {
    Error e = make_error("{}: {}", path, head.error().message);
    error_ = e;
    return e;
  }
  tmp_path_ = path + ".tmp-XXXXXX";
  fd_ = ::mkstemp(tmp_path_.data());
  if (fd_ < 0) {
    return fail(make_error("{}: cannot create a temporary file next to it: {}", path, errno_message(errno)));
  }
  if (::fchmod(fd_, 0644) != 0) return fail(make_error("cannot chmod {}: {}", tmp_path_, errno_message(errno)));
  buffer_.reserve(kBufferBytes);
  header_bytes_ = head->size();
  current_ = 0;
  current_done_ = 0;
  skip_empty();
  return write_out(head->data(), head->size());
}

void Writer::skip_empty() {
  while (current_ < tensors_.size() && current_done_ == tensors_[current_].n_bytes) {
    ++current_;
    current_done_ = 0;
  }
}

Status Writer::flush() {
  const uint8_t* p = buffer_.data();
  size_t n = buffer_.size();
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail(make_error("cannot write {}: {}", tmp_path_, errno_message(errno)));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  buffer_.clear();
  return ok_status();
}

Status Writer::write_out(const uint8_t* p, size_t n) {
  while (n > 0) {
    const size_t take = std::min(n, kBufferBytes - buffer_.size());
    buffer_.insert(buffer_.end(), p, p + take);
    p += take;
    n -= take;
    written_ += take;
    if (buffer_.size() == kBufferBytes) ATTN_RETURN_IF_ERROR(flush());
  }
  return ok_status();
}

Result<const Writer::Declared*> Writer::expect(std::string_view tensor, uint64_t n_bytes) {
  if (error_) return *error_;
  if (fd_ < 0) return make_error("{}: data for tensor '{}' appended before open()", path_, tensor);
  if (current_ >= tensors_.size()) {
    return fail(make_error("{}: data for tensor '{}' appended after every declared tensor was complete",
                           path_, tensor))
        .error();
  }
  const Declared& t = tensors_[current_];
  if (t.name != tensor) {
    const bool declared = names_.contains(tensor);
    return fail(make_error("{}: data for tensor '{}' appended while '{}' expects data ({} of {} bytes "
                           "received){}",
                           path_, tensor, t.name, current_done_, t.n_bytes,
                           declared ? "; data must follow the declaration order" : "; it was never declared"))
        .error();
  }
  if (n_bytes > t.n_bytes - current_done_) {
    return fail(make_error("{}: tensor '{}' ({} {}) holds {} bytes; {} appended, {} more than declared",
                           path_, t.name, dtype_name(t.dtype), format_shape(t.shape), t.n_bytes,
                           current_done_ + n_bytes, current_done_ + n_bytes - t.n_bytes))
        .error();
  }
  return &t;
}

Status Writer::append(std::string_view tensor, std::span<const uint8_t> bytes) {
  ATTN_RETURN_IF_ERROR(expect(tensor, bytes.size()));
  ATTN_RETURN_IF_ERROR(write_out(bytes.data(), bytes.size()));
  current_done_ += bytes.size();
  skip_empty();
  return ok_status();
}

Status Writer::append_floats(std::string_view tensor, std::span<const float> values) {
  if (error_) return *error_;
  const Declared* t = current_ < tensors_.size() ? &tensors_[current_] : nullptr;
  if (t != nullptr && t->name == tensor && t->dtype != Dtype::kF32 && t->dtype != Dtype::kF16 &&
      t->dtype != Dtype::kBF16) {
    return fail(make_error("{}: tensor '{}' is {}; float values need F32, F16 or BF16", path_, tensor,
                           dtype_name(t->dtype)));
  }
  const uint64_t elem = t != nullptr ? dtype_size(t->dtype) : 4;
  ATTN_RETURN_IF_ERROR(expect(tensor, values.size() * elem));
  const Dtype dtype = t->dtype;
  uint8_t chunk[kConvertChunk * 4];
  for (size_t i = 0; i < values.size(); i += kConvertChunk) {
    const size_t n = std::min(kConvertChunk, values.size() - i);
    for (size_t k = 0; k < n; ++k) {
      const float v = values[i + k];
      switch (dtype) {
        case Dtype::kF32: store_le32(chunk + 4 * k, std::bit_cast<uint32_t>(v)); break;
        case Dtype::kF16: store_le16(chunk + 2 * k, quant::f32_to_f16(v)); break;
        default: store_le16(chunk + 2 * k, f32_to_bf16(v)); break;
      }
    }
    ATTN_RETURN_IF_ERROR(write_out(chunk, n * elem));
  }
  current_done_ += values.size() * elem;
  skip_empty();
  return ok_status();
}

Status Writer::append_i32(std::string_view tensor, std::span<const int32_t> values) {
  if (error_) return *error_;
  const Declared* t = current_ < tensors_.size() ? &tensors_[current_] : nullptr;
  if (t != nullptr && t->name == tensor && t->dtype != Dtype::kI32 && t->dtype != Dtype::kI64) {
    return fail(make_error("{}: tensor '{}' is {}; int32 values need I32 or I64", path_, tensor,
                           dtype_name(t->dtype)));
  }
  const uint64_t elem = t != nullptr ? dtype_size(t->dtype) : 4;
  ATTN_RETURN_IF_ERROR(expect(tensor, values.size() * elem));
  const Dtype dtype = t->dtype;
  uint8_t chunk[kConvertChunk * 8];
  for (size_t i = 0; i < values.size(); i += kConvertChunk) {
    const size_t n = std::min(kConvertChunk, values.size() - i);
    for (size_t k = 0; k < n; ++k) {
      const int32_t v = values[i + k];
      if (dtype == Dtype::kI32) {
        store_le32(chunk + 4 * k, static_cast<uint32_t>(v));
      } else {
        store_le64(chunk + 8 * k, static_cast<uint64_t>(static_cast<int64_t>(v)));
      }
    }
    ATTN_RETURN_IF_ERROR(write_out(chunk, n * elem));
  }
  current_done_ += values.size() * elem;
  skip_empty();
  return ok_status();
}

Status Writer::finish() {
  if (error_) return *error_;
  if (fd_ < 0) return make_error("{}: finish() without a successful open()", path_);
  if (current_ < tensors_.size()) {
    const Declared& t = tensors_[current_];
    const size_t missing = tensors_.size() - current_;
    return fail(make_error("{}: tensor '{}' ({} {}) received {} of its {} bytes{}", path_, t.name,
                           dtype_name(t.dtype), format_shape(t.shape), current_done_, t.n_bytes,
                           missing > 1 ? fmt::format("; {} more tensors have no data", missing - 1) : ""));
  }
  ATTN_RETURN_IF_ERROR(flush());
  if (::fsync(fd_) != 0) return fail(make_error("cannot sync {}: {}", tmp_path_, errno_message(errno)));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp_path_.c_str());
    return fail(make_error("cannot close {}: {}", tmp_path_, errno_message(err)));
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_path_.c_str());
    return fail(make_error("cannot rename {} to {}: {}", tmp_path_, path_, errno_message(err)));
  }
  finished_ = true;
  return ok_status();
}

}  // namespace attnscope::safetensors
