// GGUF reader: header, metadata and tensor infos, with every count, size and offset
// checked against the bytes actually present. Layout: docs/gguf.md.
#include "attnscope/gguf.h"

#include <limits>

#include "attnscope/ggml_type.h"
#include "io/byte_reader.h"
#include "io/gguf_internal.h"
#include "io/mapped_file.h"

namespace attnscope::gguf {
namespace {

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// 'GGUF', or e.g. 'PK\x03\x04' for a zip file.
std::string printable_magic(const uint8_t* p) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '\'') {
      out += static_cast<char>(p[i]);
    } else {
      out += fmt::format("\\x{:02x}", p[i]);
    }
  }
  return out;
}

std::string format_ne(const TensorInfo& t) {
  std::string out = "[";
  for (uint32_t i = 0; i < t.n_dims && i < 4; ++i) out += fmt::format("{}{}", i ? ", " : "", t.ne[i]);
  return out + "]";
}

Status check_version(const std::string& source, uint32_t version) {
  if (version == 2 || version == 3) return ok_status();
  if (version == 1) {
    return make_error("{}: GGUF version 1 is not supported (expected 2 or 3); re-convert the model "
                      "with a current llama.cpp",
                      source);
  }
  const uint32_t swapped = ((version & 0xffu) << 24) | ((version & 0xff00u) << 8) |
                           ((version >> 8) & 0xff00u) | (version >> 24);
  if (swapped == 2 || swapped == 3) {
    return make_error("{}: big-endian GGUF (version {}) is not supported (expected a little-endian "
                      "file, version 2 or 3)",
                      source, swapped);
  }
  return make_error("{}: unsupported GGUF version {} (expected 2 or 3)", source, version);
}

// general.alignment: optional, uint32, a nonzero power of two.
Result<uint64_t> read_alignment(const std::string& source, const Value* v) {
  if (v == nullptr) return uint64_t{32};
  if (v->type != ValueType::kUint32) {
    return make_error("{}: metadata key 'general.alignment': expected uint32, found {}", source,
                      detail::describe(*v));
  }
  const uint64_t a = std::get<uint64_t>(v->data);
  if (!detail::is_power_of_two(a)) {
    return make_error("{}: metadata key 'general.alignment': expected a nonzero power of two, found {}",
                      source, a);
  }
  return a;
}

// Reads one tensor info and checks its shape and type (not yet its placement).
Result<TensorInfo> read_tensor_info(io::ByteReader& r, uint64_t index, uint64_t alignment) {
  const std::string& src = r.source();
  TensorInfo t;
  ATTN_ASSIGN_OR_RETURN(t.name, r.gguf_string(fmt::format("name of tensor info {}", index)));
  const std::string what = fmt::format("tensor '{}'", t.name);

  ATTN_ASSIGN_OR_RETURN(t.n_dims, r.u32(what));
  if (t.n_dims < 1 || t.n_dims > 4) {
    return make_error("{}: tensor '{}': n_dims is {}, expected 1 to 4", src, t.name, t.n_dims);
  }
  uint64_t n_elements = 1;
  bool overflow = false;
  for (uint32_t i = 0; i < t.n_dims; ++i) {
    ATTN_ASSIGN_OR_RETURN(t.ne[i], r.u64(what));
    if (t.ne[i] > kInt64Max) {
      return make_error("{}: tensor '{}': ne[{}] = {} does not fit in int64", src, t.name, i, t.ne[i]);
    }
    if (t.ne[i] != 0 && n_elements > kInt64Max / t.ne[i]) overflow = true;
    if (!overflow) n_elements *= t.ne[i];
  }
  ATTN_ASSIGN_OR_RETURN(t.type, r.u32(what));
  ATTN_ASSIGN_OR_RETURN(t.offset, r.u64(what));

  if (overflow) {
    return make_error("{}: tensor '{}': element count of ne {} overflows int64", src, t.name,
                      format_ne(t));
  }
  if (ggml_type_info(t.type) == nullptr) {
    return make_error("{}: tensor '{}': unknown ggml type id {}", src, t.name, t.type);
  }
  auto bytes = ggml_tensor_bytes(t.type, std::span<const uint64_t>(t.ne.data(), t.n_dims));
  if (!bytes.ok()) {
    return make_error("{}: tensor '{}' ({}, ne {}): {}", src, t.name, ggml_type_name(t.type),
                      format_ne(t), bytes.error().message);
  }
  t.n_bytes = *bytes;
  if (t.offset % alignment != 0) {
    return make_error("{}: tensor '{}': data offset {} is not a multiple of the alignment {}", src,
                      t.name, t.offset, alignment);
  }
  return t;
}

}  // namespace

Result<File> File::parse(std::span<const uint8_t> bytes, std::string source) {
  File f;
  f.source_ = std::move(source);
  f.file_size_ = bytes.size();
  const std::string& src = f.source_;
  io::ByteReader r(bytes, f.source_);

  // ---- Header: magic, version, counts ----
  if (bytes.size() < 4) return r.truncated(4, "magic");
  if (bytes[0] != 'G' || bytes[1] != 'G' || bytes[2] != 'U' || bytes[3] != 'F') {
    return make_error("{}: not a GGUF file (magic '{}', expected 'GGUF')", src,
                      printable_magic(bytes.data()));
  }
  ATTN_RETURN_IF_ERROR(r.take(4, "magic"));
  ATTN_ASSIGN_OR_RETURN(f.version_, r.u32("version"));
  ATTN_RETURN_IF_ERROR(check_version(src, f.version_));
  ATTN_ASSIGN_OR_RETURN(uint64_t n_tensors, r.u64("tensor count"));
  ATTN_ASSIGN_OR_RETURN(uint64_t n_kv, r.u64("metadata count"));

  // ---- Metadata ----
  if (n_kv > r.remaining() / detail::kMinKvBytes) {
    return make_error("{}: truncated: metadata count {} needs at least {} bytes each, but only {} "
                      "bytes remain after the header (file has {})",
                      src, n_kv, detail::kMinKvBytes, r.remaining(), r.size());
  }
  f.metadata_.reserve(static_cast<size_t>(n_kv));
  uint64_t values_left = detail::kMaxMetadataValues;
  for (uint64_t i = 0; i < n_kv; ++i) {
    ATTN_ASSIGN_OR_RETURN(std::string key, r.gguf_string(fmt::format("key of metadata entry {}", i)));
    const std::string what = fmt::format("metadata key '{}'", key);
    const uint64_t type_at = r.offset();
    ATTN_ASSIGN_OR_RETURN(uint32_t type, r.u32(what));
    if (!detail::is_valid_type(type)) {
      return make_error("{}: {}: unknown value type {} at offset {} (expected 0 to 12)", src, what,
                        type, type_at);
    }
    ATTN_ASSIGN_OR_RETURN(Value value,
                          detail::read_value(r, static_cast<ValueType>(type), what, 0, values_left));
    auto [it, inserted] = f.key_index_.emplace(key, f.metadata_.size());
    if (!inserted) {
      return make_error("{}: duplicate metadata key '{}' (entries {} and {})", src, key, it->second, i);
    }
    f.metadata_.emplace_back(std::move(key), std::move(value));
  }
  ATTN_ASSIGN_OR_RETURN(f.alignment_, read_alignment(src, f.find("general.alignment")));

  // ---- Tensor infos ----
  if (n_tensors > r.remaining() / detail::kMinTensorInfoBytes) {
    return make_error("{}: truncated: tensor count {} needs at least {} bytes each, but only {} "
                      "bytes remain after the metadata (file has {})",
                      src, n_tensors, detail::kMinTensorInfoBytes, r.remaining(), r.size());
  }
  f.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    ATTN_ASSIGN_OR_RETURN(TensorInfo t, read_tensor_info(r, i, f.alignment_));
    auto [it, inserted] = f.tensor_index_.emplace(t.name, f.tensors_.size());
    if (!inserted) {
      return make_error("{}: duplicate tensor name '{}' (tensor infos {} and {})", src, t.name,
                        it->second, i);
    }
    f.tensors_.push_back(std::move(t));
  }

  // ---- Data section: starts at the next multiple of the alignment ----
  // r.offset() <= bytes.size() and alignment <= 2^31, so this cannot overflow.
  const uint64_t end_of_infos = r.offset();
  f.data_offset_ = (end_of_infos + f.alignment_ - 1) / f.alignment_ * f.alignment_;
  for (TensorInfo& t : f.tensors_) {
    const uint64_t size = f.file_size_;
    if (t.offset > size || f.data_offset_ > size - t.offset) {
      return make_error("{}: tensor '{}' data offset {} (absolute {} + {}) is past the end of the "
                        "file ({} bytes)",
                        src, t.name, t.offset, f.data_offset_, t.offset, size);
    }
    const uint64_t begin = f.data_offset_ + t.offset;
    if (t.n_bytes > size - begin) {
      // begin + n_bytes may not fit in 64 bits; print it only when it does.
      if (t.n_bytes > std::numeric_limits<uint64_t>::max() - begin) {
        return make_error("{}: tensor '{}' data at {} of {} bytes extends past the end of the file "
                          "({} bytes)",
                          src, t.name, begin, t.n_bytes, size);
      }
      return make_error("{}: tensor '{}' data [{}, {}) extends past the end of the file ({} bytes)",
                        src, t.name, begin, begin + t.n_bytes, size);
    }
    t.data = bytes.data() + begin;
  }
  return f;
}

Result<File> File::open(const std::string& path) {
  ATTN_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::open(path));
  ATTN_ASSIGN_OR_RETURN(File f, parse(mapping->bytes(), path));
  f.mapping_ = std::move(mapping);
  return f;
}

void File::release_pages(const void* p, uint64_t n) const {
  if (mapping_) mapping_->release(p, n);
}

const Value* File::find(std::string_view key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace attnscope::gguf
