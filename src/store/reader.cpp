// RunReader: opens a run directory (complete or interrupted) and reads slices of the
// attention with pread on just the blocks that overlap the requested query rows.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "attnscope/store.h"
#include "store/checksum.h"
#include "store/codec.h"
#include "store/file_util.h"
#include "store/format.h"
#include "store/log_scan.h"
#include "store/manifest_json.h"
#include "store/reader_internal.h"

namespace attnscope::store {

using format::RecordHeader;

namespace {

constexpr uint64_t kMaxManifestBytes = 1ull << 30;

// An interrupted run: the prompt tokens of the last manifest written, then every
// generated token the log recovered; the text is rebuilt from their spans.
void recover_tokens(RunManifest* m, std::vector<TokenRecord> logged) {
  std::vector<TokenRecord> tokens;
  tokens.reserve(m->tokens.size() + logged.size());
  for (TokenRecord& t : m->tokens) {
    if (!t.generated) tokens.push_back(std::move(t));
  }
  for (TokenRecord& t : logged) {
    if (t.byte_begin >= 0) {
      // Place the token's bytes at its span: a checkpointed manifest may already hold
      // the text of some generated tokens, which this rewrites identically.
      if (static_cast<uint64_t>(t.byte_begin) <= m->text.size()) {
        m->text.resize(static_cast<size_t>(t.byte_begin));
      }
      m->text += t.text;
    }
    tokens.push_back(std::move(t));
  }
  m->tokens = std::move(tokens);
}

}  // namespace

RunReader::Impl::~Impl() { close_fd(&log_fd); }

Result<std::unique_ptr<RunReader>> RunReader::open(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return make_error("{}: cannot open the run: {}", dir, errno_text(errno));
  if (!S_ISDIR(st.st_mode)) return make_error("{}: not a directory, expected a run directory", dir);
  const std::string manifest_path = path_join(dir, format::kManifestFile);
  if (::access(manifest_path.c_str(), F_OK) != 0) {
    return make_error("{}: no {}: not an attnscope run", dir, format::kManifestFile);
  }
  ATTN_ASSIGN_OR_RETURN(std::string text, read_small_file(manifest_path, kMaxManifestBytes));
  ATTN_ASSIGN_OR_RETURN(StoredManifest stored, parse_stored_manifest(text, manifest_path));

  auto s = std::make_unique<Impl>();
  s->dir = dir;
  s->log_path = path_join(dir, format::kLogFile);
  s->log_fd = ::open(s->log_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (s->log_fd < 0) {
    return make_error("{}: the manifest has no attention log: cannot open {}: {}", dir, s->log_path,
                      errno_text(errno));
  }
  if (::fstat(s->log_fd, &st) != 0) return make_error("{}: cannot stat: {}", s->log_path, errno_text(errno));
  s->log_size = static_cast<uint64_t>(st.st_size);
  ATTN_ASSIGN_OR_RETURN(const format::LogHeader header, read_log_header(s->log_fd, s->log_path, s->log_size));

  RunManifest& m = stored.manifest;
  if (m.n_layers != header.n_layers || m.n_heads != header.n_heads ||
      static_cast<uint8_t>(m.precision) != header.precision) {
    return make_error("{}: manifest.json and attention.log disagree: the manifest says {} layers x {} "
                      "heads at {}, the log {} layers x {} heads at {}",
                      dir, m.n_layers, m.n_heads, precision_name(m.precision), header.n_layers,
                      header.n_heads, precision_name(static_cast<Precision>(header.precision)));
  }
  if (stored.store.run_uid && *stored.store.run_uid != header.run_uid) {
    return make_error("{}: manifest.json (run {:016x}) and attention.log (run {:016x}) belong to "
                      "different runs",
                      dir, *stored.store.run_uid, header.run_uid);
  }
  s->precision = m.precision;
  s->n_layers = m.n_layers;
  s->n_heads = m.n_heads;

  bool have_blocks = false;
  if (m.complete) {
    auto index = load_index(path_join(dir, format::kIndexFile), header, s->log_size);
    if (index.ok()) {
      s->blocks = std::move(index).value();
      s->used_index = true;
      have_blocks = true;
    } else {
      s->note = fmt::format("index not used ({}); scanned the log", index.error().message);
    }
  }
  if (!have_blocks) {
    ScanResult scan = scan_log(s->log_fd, s->log_path, header, s->log_size);
    s->blocks = std::move(scan.blocks);
    if (!scan.stop.empty()) s->note += s->note.empty() ? scan.stop : fmt::format("; {}", scan.stop);
    if (!m.complete) recover_tokens(&m, std::move(scan.tokens));
  }

  int32_t rows = std::numeric_limits<int32_t>::max();
  for (int32_t l = 0; l < s->n_layers; ++l) {
    for (int32_t h = 0; h < s->n_heads; ++h) rows = std::min(rows, s->blocks.rows(l, h));
  }
  s->n_rows = rows;
  // A "complete" manifest whose rows are not all present (a damaged log) is not complete.
  if (m.complete && stored.store.n_rows && s->n_rows < *stored.store.n_rows) m.complete = false;
  s->manifest = std::move(m);
  return std::unique_ptr<RunReader>(new RunReader(std::move(s)));
}

RunReader::RunReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunReader::~RunReader() = default;

const RunManifest& RunReader::manifest() const { return impl_->manifest; }
bool RunReader::complete() const { return impl_->manifest.complete; }
int32_t RunReader::n_layers() const { return impl_->n_layers; }
int32_t RunReader::n_heads() const { return impl_->n_heads; }
int32_t RunReader::n_rows() const { return impl_->n_rows; }

Status RunReader::Impl::check_args(int32_t layer, int32_t head, Range q, Range k) const {
  if (layer < 0 || layer >= n_layers) {
    return make_error("{}: layer {} is out of range: the run has layers 0..{}", dir, layer, n_layers - 1);
  }
  if (head < 0 || head >= n_heads) {
    return make_error("{}: head {} is out of range: the run has heads 0..{}", dir, head, n_heads - 1);
  }
  for (const auto& [name, r] : {std::pair{"query", q}, std::pair{"key", k}}) {
    if (r.begin < 0 || r.end < r.begin || r.end > n_rows) {
      return make_error("{}: {} range [{}, {}) is invalid: expected 0 <= begin <= end <= {} (rows stored)",
                        dir, name, r.begin, r.end, n_rows);
    }
  }
  return ok_status();
}

Status RunReader::Impl::read_into(int32_t layer, int32_t head, Range q, Range k, float* out) const {
  const size_t width = static_cast<size_t>(k.size());
  std::fill(out, out + static_cast<size_t>(q.size()) * width, 0.0f);  // (q.size(), k.size())
  if (q.size() == 0 || k.size() == 0) return ok_status();
  const std::vector<Block>& list = blocks.at(layer, head);
  // The block holding row q.begin: the last one starting at or before it.
  auto it = std::upper_bound(list.begin(), list.end(), q.begin,
                             [](int32_t row, const Block& b) { return row < b.row_begin; });
  if (it != list.begin()) --it;

  Decoder decoder;
  std::vector<uint8_t> record, raw;
  for (; it != list.end() && it->row_begin < q.end; ++it) {
    const Block& b = *it;
    const std::string what = fmt::format("{}: block of layer {}, head {}, rows {}..{} at offset {}",
                                         log_path, layer, head, b.row_begin, b.row_begin + b.n_rows - 1,
                                         b.offset);
    record.resize(sizeof(RecordHeader) + b.stored_size);
    ATTN_RETURN_IF_ERROR(pread_all(log_fd, record.data(), record.size(), b.offset, log_path));
    bytes_read += record.size();
    RecordHeader h;
    std::memcpy(&h, record.data(), sizeof h);
    if (h.magic != format::kRecordMagic ||
        h.header_checksum != checksum32(&h, offsetof(RecordHeader, header_checksum)) ||
        h.kind != static_cast<uint8_t>(format::RecordKind::kAttention) || h.layer != layer ||
        h.head != head || h.row_begin != b.row_begin || h.n_rows != b.n_rows ||
        h.stored_size != b.stored_size || h.raw_size != b.raw_size ||
        h.dtype != static_cast<uint8_t>(precision)) {
      return make_error("{}: the record header does not match the index: the file is corrupt", what);
    }
    const std::span<const uint8_t> payload(record.data() + sizeof h, b.stored_size);
    if (checksum64(payload.data(), payload.size()) != h.payload_checksum) {
      return make_error("{}: payload checksum mismatch: the file is corrupt", what);
    }
    ATTN_RETURN_IF_ERROR(decoder.decode(static_cast<format::Codec>(h.codec), precision, payload,
                                        b.raw_size, &raw, what));
    const int32_t r_begin = std::max(q.begin, b.row_begin);
    const int32_t r_end = std::min(q.end, b.row_begin + b.n_rows);
    for (int32_t row = r_begin; row < r_end; ++row) {
      const uint64_t row_at = format::triangle_values(b.row_begin, row - b.row_begin);  // first value
      const int32_t k_end = std::min(k.end, row + 1);  // keys after the row are 0
      if (k_end <= k.begin) continue;
      decode_values(precision, raw.data(), row_at + static_cast<uint64_t>(k.begin),
                    static_cast<uint64_t>(k_end - k.begin),
                    out + static_cast<size_t>(row - q.begin) * width);
    }
  }
  return ok_status();
}

Result<std::vector<float>> RunReader::read(int32_t layer, int32_t head, Range q, Range k) const {
  ATTN_RETURN_IF_ERROR(impl_->check_args(layer, head, q, k));
  std::vector<float> out(static_cast<size_t>(q.size()) * static_cast<size_t>(k.size()));
  ATTN_RETURN_IF_ERROR(impl_->read_into(layer, head, q, k, out.data()));
  return out;
}

}  // namespace attnscope::store
