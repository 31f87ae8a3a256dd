#include "store/log_scan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "store/checksum.h"
#include "store/codec.h"
#include "store/file_util.h"

namespace attnscope::store {

using format::RecordHeader;

namespace {

// Why an attention block (from a record header or an index entry) cannot follow the
// blocks already in `map`; "" if it can.
std::string block_problem(const BlockMap& map, Precision precision, int32_t layer, int32_t head,
                          int32_t row_begin, int32_t n_rows, uint32_t raw_size) {
  if (layer < 0 || layer >= map.n_layers || head < 0 || head >= map.n_heads) {
    return fmt::format("layer {}, head {} is outside the run's {} layers x {} heads", layer, head,
                       map.n_layers, map.n_heads);
  }
  if (n_rows <= 0 || n_rows > format::kMaxBlockRows) {
    return fmt::format("{} rows, expected 1..{}", n_rows, format::kMaxBlockRows);
  }
  const int32_t expected = map.rows(layer, head);
  if (row_begin != expected) {
    return fmt::format("layer {}, head {} starts at row {}, expected row {}", layer, head, row_begin,
                       expected);
  }
  if (int64_t{row_begin} + n_rows > format::kMaxPositions) {
    return fmt::format("rows up to {}, above the {} position limit", int64_t{row_begin} + n_rows,
                       format::kMaxPositions);
  }
  const uint64_t want = format::triangle_values(row_begin, n_rows) * dtype_size(precision);
  if (raw_size != want) return fmt::format("raw size {}, expected {}", raw_size, want);
  // The writer keeps blocks under kMaxBlockRawBytes unless a single row is larger.
  const uint64_t one_row = (uint64_t{static_cast<uint32_t>(row_begin)} + n_rows) * dtype_size(precision);
  if (n_rows > 1 && want > format::kMaxBlockRawBytes) {
    return fmt::format("raw size {}, above the {} byte block limit", want, format::kMaxBlockRawBytes);
  }
  if (want > std::max<uint64_t>(format::kMaxBlockRawBytes, one_row)) return "block too large";
  return {};
}

// Sequential reads through a buffer: a header that follows a small payload is usually
// already in it, a large payload is skipped with a seek.
class BufferedFile {
 public:
  BufferedFile(int fd, const std::string& path, uint64_t size) : fd_(fd), path_(path), size_(size) {}

  // Bytes [offset, offset + n) of the file, or nullptr when they are past the end or
  // cannot be read (the reason in *why).
  const uint8_t* get(uint64_t offset, size_t n, std::string* why) {
    if (offset >= begin_ && offset + n <= begin_ + buf_.size()) return buf_.data() + (offset - begin_);
    if (offset + n > size_) {
      *why = fmt::format("needs bytes up to {}, the file has {}", offset + n, size_);
      return nullptr;
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(n, kChunk), size_ - offset));
    buf_.resize(want);
    Status st = pread_all(fd_, buf_.data(), want, offset, path_);
    if (!st.ok()) {
      buf_.clear();
      *why = st.error().message;
      return nullptr;
    }
    begin_ = offset;
    return buf_.data();
  }

 private:
  static constexpr size_t kChunk = 1u << 20;
  int fd_;
  const std::string& path_;
  uint64_t size_;
  std::vector<uint8_t> buf_;
  uint64_t begin_ = 0;
};

}  // namespace

Result<format::LogHeader> read_log_header(int fd, const std::string& path, uint64_t file_size) {
  format::LogHeader h{};
  if (file_size < sizeof h) {
    return make_error("{}: {} bytes, expected a header of {} bytes", path, file_size, sizeof h);
  }
  ATTN_RETURN_IF_ERROR(pread_all(fd, &h, sizeof h, 0, path));
  if (std::memcmp(h.magic, format::kLogMagic, sizeof h.magic) != 0) {
    return make_error("{}: not an attnscope attention log (bad magic)", path);
  }
  if (h.checksum != checksum64(&h, offsetof(format::LogHeader, checksum))) {
    return make_error("{}: header checksum mismatch: the header is corrupt", path);
  }
  if (h.format_version > static_cast<uint32_t>(kFormatVersion)) {
    return make_error("{}: format version {} is newer than this attnscope ({}): upgrade attnscope",
                      path, h.format_version, kFormatVersion);
  }
  if (h.format_version < 1 || h.header_size != sizeof h || h.record_header_size != sizeof(RecordHeader)) {
    return make_error("{}: format version {}, header {} bytes, record header {} bytes: expected "
                      "version 1..{}, {} and {}",
                      path, h.format_version, h.header_size, h.record_header_size, kFormatVersion,
                      sizeof h, sizeof(RecordHeader));
  }
  if (h.n_layers <= 0 || h.n_layers > format::kMaxLayers || h.n_heads <= 0 ||
      h.n_heads > format::kMaxHeads || int64_t{h.n_layers} * h.n_heads > format::kMaxLayerHeads ||
      !valid_precision(h.precision)) {
    return make_error("{}: invalid shape {} layers x {} heads (at most {} layer-heads), precision {}",
                      path, h.n_layers, h.n_heads, format::kMaxLayerHeads, static_cast<int>(h.precision));
  }
  return h;
}

ScanResult scan_log(int fd, const std::string& path, const format::LogHeader& header,
                    uint64_t file_size) {
  ScanResult out;
  out.blocks.reset(header.n_layers, header.n_heads);
  const auto precision = static_cast<Precision>(header.precision);
  BufferedFile file(fd, path, file_size);
  uint64_t off = sizeof(format::LogHeader);
  std::string why;
  while (off < file_size) {
    const uint8_t* p = file.get(off, sizeof(RecordHeader), &why);
    if (p == nullptr) {
      why = fmt::format("torn record header ({})", why);
      break;
    }
    RecordHeader h;
    std::memcpy(&h, p, sizeof h);
    if (h.magic != format::kRecordMagic ||
        h.header_checksum != checksum32(&h, offsetof(RecordHeader, header_checksum))) {
      why = "bad record header (magic or checksum)";
      break;
    }
    const uint64_t end = off + sizeof h + h.stored_size;
    if (end > file_size) {
      why = fmt::format("torn record: its payload ends at {}, the file at {}", end, file_size);
      break;
    }
    if (h.kind == static_cast<uint8_t>(format::RecordKind::kAttention)) {
      why = block_problem(out.blocks, precision, h.layer, h.head, h.row_begin, h.n_rows, h.raw_size);
      // (An unknown codec is reported by read() for that block alone.)
      if (why.empty() && h.dtype != header.precision) {
        why = fmt::format("dtype {}, expected {}", h.dtype, header.precision);
      }
      if (!why.empty()) break;
      out.blocks.at(h.layer, h.head).push_back(Block{h.row_begin, h.n_rows, off, h.stored_size, h.raw_size});
    } else if (h.kind == static_cast<uint8_t>(format::RecordKind::kToken)) {
      if (h.stored_size != h.raw_size || h.stored_size < sizeof(format::TokenPayload) ||
          h.stored_size > format::kMaxTokenPayload) {
        why = fmt::format("token record of {} bytes", h.stored_size);
        break;
      }
      const uint8_t* payload = file.get(off + sizeof h, h.stored_size, &why);
      if (payload == nullptr) break;
      if (checksum64(payload, h.stored_size) != h.payload_checksum) {
        why = "token record checksum mismatch";
        break;
      }
      format::TokenPayload tp;
      std::memcpy(&tp, payload, sizeof tp);
      TokenRecord t;
      t.id = tp.id;
      t.byte_begin = tp.byte_begin;
      t.byte_end = tp.byte_end;
      t.generated = (h.flags & format::kTokenGenerated) != 0;
      t.special = (h.flags & format::kTokenSpecial) != 0;
      t.text.assign(reinterpret_cast<const char*>(payload) + sizeof tp, h.stored_size - sizeof tp);
      out.tokens.push_back(std::move(t));
    } else {
      why = fmt::format("unknown record kind {}", h.kind);
      break;
    }
    off = end;
  }
  out.valid_end = off;
  if (off < file_size) out.stop = fmt::format("{}: stopped at offset {} of {}: {}", path, off, file_size, why);
  return out;
}

Result<BlockMap> load_index(const std::string& index_path, const format::LogHeader& log,
                            uint64_t log_file_size) {
  const int fd = ::open(index_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("{}: cannot open: {}", index_path, errno_text(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error("{}: cannot stat: {}", index_path, errno_text(errno));
  const auto size = static_cast<uint64_t>(st.st_size);
  format::IndexHeader h{};
  if (size < sizeof h) return make_error("{}: {} bytes, shorter than its header", index_path, size);
  ATTN_RETURN_IF_ERROR(pread_all(fd, &h, sizeof h, 0, index_path));
  if (std::memcmp(h.magic, format::kIndexMagic, sizeof h.magic) != 0 ||
      h.header_checksum != checksum64(&h, offsetof(format::IndexHeader, header_checksum))) {
    return make_error("{}: bad magic or header checksum", index_path);
  }
  if (h.format_version != log.format_version || h.header_size != sizeof h || h.run_uid != log.run_uid ||
      h.n_layers != log.n_layers || h.n_heads != log.n_heads) {
    return make_error("{}: does not belong to this attention.log", index_path);
  }
  if (h.n_entries != (size - sizeof h) / sizeof(format::IndexEntry) ||
      (size - sizeof h) % sizeof(format::IndexEntry) != 0) {
    return make_error("{}: {} bytes for {} entries", index_path, size, h.n_entries);
  }
  if (h.log_size > log_file_size) {
    return make_error("{}: indexes {} bytes of attention.log, which has {}", index_path, h.log_size,
                      log_file_size);
  }
  std::vector<format::IndexEntry> entries(h.n_entries);
  ATTN_RETURN_IF_ERROR(pread_all(fd, entries.data(), entries.size() * sizeof entries[0], sizeof h, index_path));
  if (checksum64(entries.data(), entries.size() * sizeof entries[0]) != h.entries_checksum) {
    return make_error("{}: entries checksum mismatch", index_path);
  }
  BlockMap map;
  map.reset(log.n_layers, log.n_heads);
  const auto precision = static_cast<Precision>(log.precision);
  for (size_t i = 0; i < entries.size(); ++i) {
    const format::IndexEntry& e = entries[i];
    std::string why = block_problem(map, precision, e.layer, e.head, e.row_begin, e.n_rows, e.raw_size);
    if (why.empty() && (e.offset < sizeof(format::LogHeader) || e.offset > h.log_size ||
                        h.log_size - e.offset < sizeof(RecordHeader) + uint64_t{e.stored_size})) {
      why = fmt::format("offset {} + {} bytes is outside the indexed log", e.offset, e.stored_size);
    }
    if (!why.empty()) return make_error("{}: entry {}: {}", index_path, i, why);
    map.at(e.layer, e.head).push_back(Block{e.row_begin, e.n_rows, e.offset, e.stored_size, e.raw_size});
  }
  return map;
}

}  // namespace attnscope::store
