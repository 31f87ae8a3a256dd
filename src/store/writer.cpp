// RunWriter: appends checksummed records to attention.log as the engine delivers
// attention rows. Every on_attention / add_generated_token call ends with its records
// handed to write(2), so a killed process loses nothing it returned from. Memory is
// bounded by one delivery (one engine chunk of rows) plus fixed buffers; the index of
// blocks goes to index.bin.tmp as it grows and becomes index.bin at finish().
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>

#include "attnscope/store.h"
#include "store/checksum.h"
#include "store/codec.h"
#include "store/file_util.h"
#include "store/format.h"
#include "store/manifest_json.h"

namespace attnscope::store {

namespace fs = std::filesystem;
using format::IndexEntry;
using format::RecordHeader;

namespace {

constexpr int kZstdLevel = 1;
constexpr size_t kFlushBytes = 4u << 20;   // pending log bytes that trigger a write(2)
constexpr size_t kIndexFlushEntries = 4096;

uint64_t random_uid() {
  std::random_device rd;
  const uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  uint64_t v = (uint64_t{rd()} << 32) ^ rd() ^ (t * 0x9E3779B97F4A7C15ull) ^ static_cast<uint64_t>(::getpid());
  return v == 0 ? 1 : v;
}

bool is_run_file(const std::string& name) {
  for (const char* f : format::kRunFiles) {
    if (name == f) return true;
  }
  return false;
}

// Makes `dir` an empty directory ready for a new run, per the overwrite rules.
Status prepare_directory(const std::string& dir, bool overwrite) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("{}: cannot create the directory: {}", dir, ec.message());
  if (!fs::is_directory(dir, ec)) return make_error("{}: exists and is not a directory", dir);

  bool has_run = false, has_other = false;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == format::kManifestFile || name == format::kLogFile) has_run = true;
    if (!is_run_file(name)) has_other = true;
  }
  if (ec) return make_error("{}: cannot list the directory: {}", dir, ec.message());
  if (!has_run) {
    if (has_other) return make_error("{} is not empty and is not an attnscope run", dir);
    // Only leftovers of ours (temp files of a run that never started): remove them.
  } else if (!overwrite) {
    return make_error("{} already holds an attnscope run: choose another directory or overwrite it", dir);
  }
  // The manifest goes last, so an interrupted removal still looks like a run.
  for (const char* name : format::kRunFiles) {
    const std::string path = path_join(dir, name);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return make_error("{}: cannot remove: {}", path, errno_text(errno));
    }
  }
  return ok_status();
}

}  // namespace

struct RunWriter::Impl {
  std::string dir, log_path, index_path;
  int log_fd = -1;
  int index_fd = -1;
  uint64_t run_uid = 0;
  Precision precision = Precision::kF16;
  int32_t n_layers = 0, n_heads = 0;
  std::vector<int32_t> next_row;  // (n_layers) rows stored so far
  int32_t n_tokens = 0;           // position of the next generated token
  uint64_t log_size = 0;          // bytes handed to write(2)
  Status error;                   // sticky
  bool finished = false;

  Encoder encoder{kZstdLevel};
  std::vector<uint8_t> pending;    // records not yet written (< kFlushBytes + one block)
  std::vector<uint8_t> raw;        // one block's raw values
  std::vector<IndexEntry> index_pending;
  uint64_t index_entries = 0;
  Checksum64 index_hash;

  ~Impl() {
    close_fd(&log_fd);
    close_fd(&index_fd);
  }

  void fail(Error e) {
    if (!error.ok()) return;
    error = std::move(e);
    // Drop the torn tail of a failed write so the log ends on a record boundary
    // (best effort: readers stop at a torn record anyway).
    if (log_fd >= 0 && ::ftruncate(log_fd, static_cast<off_t>(log_size)) != 0) {
      // ignored: the error being reported is the one that matters
    }
    pending.clear();
  }

  Status flush_log() {
    if (pending.empty()) return ok_status();
    Status st = write_all(log_fd, pending.data(), pending.size(), log_path);
    if (!st.ok()) return st;
    log_size += pending.size();
    pending.clear();
    return ok_status();
  }

  Status flush_index() {
    if (index_pending.empty()) return ok_status();
    const size_t n = index_pending.size() * sizeof(IndexEntry);
    ATTN_RETURN_IF_ERROR(write_all(index_fd, index_pending.data(), n, index_path));
    index_hash.update(index_pending.data(), n);
    index_entries += index_pending.size();
    index_pending.clear();
    return ok_status();
  }

  // Completes the record at pending[header_at..]: fills in h and copies it in front of
  // its payload, which is the rest of `pending`.
  void seal_record(RecordHeader& h, size_t header_at) {
    const size_t payload_at = header_at + sizeof(RecordHeader);
    h.magic = format::kRecordMagic;
    h.stored_size = static_cast<uint32_t>(pending.size() - payload_at);
    h.payload_checksum = checksum64(pending.data() + payload_at, h.stored_size);
    h.reserved = 0;
    h.header_checksum = checksum32(&h, offsetof(RecordHeader, header_checksum));
    std::memcpy(pending.data() + header_at, &h, sizeof h);
  }

  Status append_block(int32_t layer, int32_t head, int32_t row_begin, int32_t n_rows,
                      const float* rows, int64_t stride) {
    raw.clear();
    encode_triangle(precision, rows, stride, row_begin, n_rows, &raw);
    const size_t header_at = pending.size();
    pending.resize(header_at + sizeof(RecordHeader));
    ATTN_ASSIGN_OR_RETURN(const format::Codec codec, encoder.encode(precision, raw, &pending));
    RecordHeader h{};
    h.kind = static_cast<uint8_t>(format::RecordKind::kAttention);
    h.dtype = static_cast<uint8_t>(precision);
    h.codec = static_cast<uint8_t>(codec);
    h.layer = layer;
    h.head = head;
    h.row_begin = row_begin;
    h.n_rows = n_rows;
    h.raw_size = static_cast<uint32_t>(raw.size());
    seal_record(h, header_at);
    index_pending.push_back(IndexEntry{layer, head, row_begin, n_rows, log_size + header_at,
                                       h.stored_size, h.raw_size});
    if (pending.size() >= kFlushBytes) ATTN_RETURN_IF_ERROR(flush_log());
    if (index_pending.size() >= kIndexFlushEntries) ATTN_RETURN_IF_ERROR(flush_index());
    return ok_status();
  }

  Status deliver(const AttentionRows& r) {
    if (r.layer < 0 || r.layer >= n_layers || r.n_heads != n_heads || r.n_rows <= 0 ||
        r.q_begin < 0 || r.n_keys != r.q_begin + r.n_rows || r.probs == nullptr) {
      return make_error("{}: malformed attention rows: layer {} (of {}), {} heads (expected {}), "
                        "rows {}+{}, {} keys (expected {})",
                        log_path, r.layer, n_layers, r.n_heads, n_heads, r.q_begin, r.n_rows,
                        r.n_keys, int64_t{r.q_begin} + r.n_rows);
    }
    const auto l = static_cast<size_t>(r.layer);
    if (r.q_begin != next_row[l]) {
      return make_error("{}: attention rows of layer {} start at row {}, expected row {}", log_path,
                        r.layer, r.q_begin, next_row[l]);
    }
    // Blocks of at most kMaxBlockRows rows and kMaxBlockRawBytes decoded bytes.
    const uint64_t row_bytes = static_cast<uint64_t>(r.n_keys) * dtype_size(precision);
    const auto byte_rows = static_cast<int32_t>(std::max<uint64_t>(1, format::kMaxBlockRawBytes / row_bytes));
    const int32_t block_rows = std::min(format::kMaxBlockRows, byte_rows);
    for (int32_t r0 = 0; r0 < r.n_rows; r0 += block_rows) {
      const int32_t nb = std::min(block_rows, r.n_rows - r0);
      for (int32_t h = 0; h < n_heads; ++h) {
        const float* rows = r.probs + (int64_t{h} * r.n_rows + r0) * r.n_keys;  // (nb, n_keys)
        ATTN_RETURN_IF_ERROR(append_block(r.layer, h, r.q_begin + r0, nb, rows, r.n_keys));
      }
    }
    ATTN_RETURN_IF_ERROR(flush_log());
    next_row[l] += r.n_rows;
    return ok_status();
  }

  Status write_manifest(const RunManifest& m, bool complete) {
    RunManifest out = m;
    out.format_version = kFormatVersion;
    out.precision = precision;  // the shape and precision are the writer's
    out.n_layers = n_layers;
    out.n_heads = n_heads;
    out.complete = complete;
    StoreFields sf;
    sf.run_uid = run_uid;
    if (complete) sf.n_rows = *std::min_element(next_row.begin(), next_row.end());
    return replace_file_atomically(dir, format::kManifestFile, format::kManifestTemp,
                                   manifest_to_json(out, sf));
  }

  Status write_index() {
    ATTN_RETURN_IF_ERROR(flush_index());
    format::IndexHeader h{};
    std::memcpy(h.magic, format::kIndexMagic, sizeof h.magic);
    h.format_version = kFormatVersion;
    h.header_size = sizeof h;
    h.run_uid = run_uid;
    h.n_layers = n_layers;
    h.n_heads = n_heads;
    h.n_entries = index_entries;
    h.log_size = log_size;
    h.entries_checksum = index_hash.digest();
    h.header_checksum = checksum64(&h, offsetof(format::IndexHeader, header_checksum));
    ATTN_RETURN_IF_ERROR(pwrite_all(index_fd, &h, sizeof h, 0, index_path));
    ATTN_RETURN_IF_ERROR(fsync_path_fd(index_fd, index_path));
    close_fd(&index_fd);
    const std::string final_path = path_join(dir, format::kIndexFile);
    if (::rename(index_path.c_str(), final_path.c_str()) != 0) {
      return make_error("{}: cannot rename to {}: {}", index_path, final_path, errno_text(errno));
    }
    return ok_status();
  }
};

Result<std::unique_ptr<RunWriter>> RunWriter::create(const std::string& dir, RunManifest initial,
                                                     bool overwrite) {
  if (initial.n_layers <= 0 || initial.n_layers > format::kMaxLayers || initial.n_heads <= 0 ||
      initial.n_heads > format::kMaxHeads) {
    return make_error("{}: the manifest's attention shape is {} layers x {} heads, expected 1..{} x 1..{}",
                      dir, initial.n_layers, initial.n_heads, format::kMaxLayers, format::kMaxHeads);
  }
  if (!valid_precision(static_cast<uint8_t>(initial.precision))) {
    return make_error("{}: invalid precision {}", dir, static_cast<int>(initial.precision));
  }
  ATTN_RETURN_IF_ERROR(prepare_directory(dir, overwrite));

  auto s = std::make_unique<Impl>();
  s->dir = dir;
  s->log_path = path_join(dir, format::kLogFile);
  s->index_path = path_join(dir, format::kIndexTemp);
  s->run_uid = random_uid();
  s->precision = initial.precision;
  s->n_layers = initial.n_layers;
  s->n_heads = initial.n_heads;
  s->next_row.assign(static_cast<size_t>(initial.n_layers), 0);
  s->n_tokens = static_cast<int32_t>(initial.tokens.size());

  s->log_fd = ::open(s->log_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (s->log_fd < 0) return make_error("{}: cannot create: {}", s->log_path, errno_text(errno));
  format::LogHeader h{};
  std::memcpy(h.magic, format::kLogMagic, sizeof h.magic);
  h.format_version = kFormatVersion;
  h.header_size = sizeof h;
  h.run_uid = s->run_uid;
  h.n_layers = s->n_layers;
  h.n_heads = s->n_heads;
  h.precision = static_cast<uint8_t>(s->precision);
  h.record_header_size = sizeof(RecordHeader);
  h.checksum = checksum64(&h, offsetof(format::LogHeader, checksum));
  ATTN_RETURN_IF_ERROR(write_all(s->log_fd, &h, sizeof h, s->log_path));
  ATTN_RETURN_IF_ERROR(fsync_path_fd(s->log_fd, s->log_path));
  s->log_size = sizeof h;

  s->index_fd = ::open(s->index_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (s->index_fd < 0) return make_error("{}: cannot create: {}", s->index_path, errno_text(errno));
  const format::IndexHeader placeholder{};  // filled in by finish()
  ATTN_RETURN_IF_ERROR(write_all(s->index_fd, &placeholder, sizeof placeholder, s->index_path));

  ATTN_RETURN_IF_ERROR(s->write_manifest(initial, /*complete=*/false));
  return std::unique_ptr<RunWriter>(new RunWriter(std::move(s)));
}

RunWriter::RunWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunWriter::~RunWriter() = default;

void RunWriter::on_attention(const AttentionRows& rows) {
  Impl& s = *impl_;
  if (!s.error.ok()) return;
  if (s.finished) return s.fail(make_error("{}: attention rows after finish()", s.log_path));
  Status st = s.deliver(rows);
  if (!st.ok()) s.fail(std::move(st).error());
}

Status RunWriter::add_generated_token(const TokenRecord& token) {
  Impl& s = *impl_;
  if (!s.error.ok()) return s.error;
  if (s.finished) return make_error("{}: add_generated_token after finish()", s.log_path);
  if (token.text.size() > format::kMaxTokenPayload - sizeof(format::TokenPayload)) {
    return make_error("{}: token {} has {} bytes of text, at most {} can be stored", s.log_path,
                      token.id, token.text.size(), format::kMaxTokenPayload - sizeof(format::TokenPayload));
  }
  const size_t header_at = s.pending.size();
  s.pending.resize(header_at + sizeof(RecordHeader));
  const format::TokenPayload p{token.id, 0, token.byte_begin, token.byte_end};
  const auto* pb = reinterpret_cast<const uint8_t*>(&p);
  s.pending.insert(s.pending.end(), pb, pb + sizeof p);
  s.pending.insert(s.pending.end(), token.text.begin(), token.text.end());
  RecordHeader h{};
  h.kind = static_cast<uint8_t>(format::RecordKind::kToken);
  h.flags = static_cast<uint8_t>((token.generated ? format::kTokenGenerated : 0) |
                                 (token.special ? format::kTokenSpecial : 0));
  h.layer = -1;
  h.head = -1;
  h.row_begin = s.n_tokens;
  h.raw_size = static_cast<uint32_t>(sizeof p + token.text.size());
  s.seal_record(h, header_at);
  Status st = s.flush_log();
  if (!st.ok()) {
    s.fail(std::move(st).error());
    return s.error;
  }
  ++s.n_tokens;
  return ok_status();
}

Status RunWriter::checkpoint(const RunManifest& manifest) {
  Impl& s = *impl_;
  if (s.finished) return make_error("{}: checkpoint after finish()", s.dir);
  return s.write_manifest(manifest, /*complete=*/false);
}

Status RunWriter::finish(RunManifest final_manifest) {
  Impl& s = *impl_;
  if (s.finished) return make_error("{}: finish() called twice", s.dir);
  if (!s.error.ok()) {
    (void)s.write_manifest(final_manifest, /*complete=*/false);  // keep the final tokens, timings
    return s.error;
  }
  const int32_t rows = *std::max_element(s.next_row.begin(), s.next_row.end());
  if (static_cast<int64_t>(final_manifest.tokens.size()) < rows) {
    return make_error("{}: the final manifest lists {} tokens, but {} rows of attention are stored",
                      s.dir, final_manifest.tokens.size(), rows);
  }
  Status st = s.flush_log();
  if (st.ok()) st = fsync_path_fd(s.log_fd, s.log_path);
  if (st.ok()) st = s.write_index();
  if (st.ok()) st = s.write_manifest(final_manifest, /*complete=*/true);  // fsyncs the directory
  if (!st.ok()) {
    s.fail(std::move(st).error());
    return s.error;
  }
  close_fd(&s.log_fd);
  s.finished = true;
  return ok_status();
}

Status RunWriter::status() const { return impl_->error; }

uint64_t RunWriter::bytes_written() const { return impl_->log_size; }

}  // namespace attnscope::store
