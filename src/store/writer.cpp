// RunWriter: checks each engine delivery and token on the engine's thread, copies what
// the log stores into the write queue (store/write_queue.h), and leaves compression and
// write(2) to the writer thread (store/log_appender.h), which appends the records in
// call order. Memory is bounded by the queue's budget plus fixed buffers; the index of
// blocks goes to index.bin.tmp as it grows and becomes index.bin at finish().
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <random>

#include "attnscope/store.h"
#include "store/checksum.h"
#include "store/codec.h"
#include "store/file_util.h"
#include "store/log_appender.h"
#include "store/format.h"
#include "store/manifest_json.h"
#include "store/write_queue.h"

namespace attnscope::store {

namespace fs = std::filesystem;

namespace {

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
  std::string dir, log_path;
  uint64_t run_uid = 0;
  Precision precision = Precision::kF16;
  int32_t n_layers = 0, n_heads = 0;
  // What the engine's thread has handed to the queue.
  std::vector<int32_t> next_row;  // (n_layers) rows accepted so far
  int32_t n_tokens = 0;           // position of the next generated token
  Status caller_error;            // sticky: a malformed call, or finish() failing
  bool finished = false;

  std::unique_ptr<LogAppender> appender;  // the writer thread's until queue->stop()
  std::unique_ptr<WriteQueue> queue;

  // The queue runs (writes) what it holds and joins before the appender closes the files.
  ~Impl() { queue.reset(); }

  // The first error, without waiting. A job error comes first in call order when both
  // exist: the engine's thread hands over no job after an error of its own.
  Status known_error() const {
    Status q = queue->error();
    return q.ok() ? caller_error : q;
  }
  // The first error of everything handed over (waits for the queue).
  Status drained_error() {
    Status q = queue->drain();
    return q.ok() ? caller_error : q;
  }
  void set_error(Error e) {
    if (caller_error.ok()) caller_error = std::move(e);
  }

  Status check(const AttentionRows& r) const {
    if (r.layer < 0 || r.layer >= n_layers || r.n_heads != n_heads || r.n_rows <= 0 ||
        r.q_begin < 0 || r.n_keys != r.q_begin + r.n_rows || r.probs == nullptr) {
      return make_error("{}: malformed attention rows: layer {} (of {}), {} heads (expected {}), "
                        "rows {}+{}, {} keys (expected {})",
                        log_path, r.layer, n_layers, r.n_heads, n_heads, r.q_begin, r.n_rows,
                        r.n_keys, int64_t{r.q_begin} + r.n_rows);
    }
    if (r.q_begin != next_row[static_cast<size_t>(r.layer)]) {
      return make_error("{}: attention rows of layer {} start at row {}, expected row {}", log_path,
                        r.layer, r.q_begin, next_row[static_cast<size_t>(r.layer)]);
    }
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
};

namespace {

// The stored part of a delivery (RowsJob): each head's rows in precision p, keys 0..own
// position only, cut into blocks, compressed and checksummed, the heads in parallel on
// the engine's threads.
RowsJob copy_rows(const AttentionRows& r, Precision p) {
  RowsJob job{r.layer, r.n_heads, r.q_begin, r.n_rows, std::vector<EncodedHead>(static_cast<size_t>(r.n_heads)), {}};
  const size_t width = dtype_size(p);
  const int32_t block_rows = format::block_rows(r.n_keys, width);
  std::mutex error_mutex;
  r.for_ranges(r.n_heads, [&](int64_t begin, int64_t end) {
    // One zstd context and one triangle buffer per thread, kept for the next delivery.
    thread_local Encoder encoder(kStoreZstdLevel);
    thread_local std::vector<uint8_t> raw;  // (triangle_values(q_begin, n_rows) * width) one head's rows
    raw.resize(format::triangle_values(r.q_begin, r.n_rows) * width);
    for (int64_t h = begin; h < end; ++h) {
      encode_triangle(p, r.probs + h * r.n_rows * r.n_keys, r.n_keys, r.q_begin, r.n_rows, raw.data());
      EncodedHead& out = job.heads[static_cast<size_t>(h)];
      for (int32_t r0 = 0; r0 < r.n_rows; r0 += block_rows) {
        EncodedBlock b;
        b.row_begin = r.q_begin + r0;
        b.n_rows = std::min(block_rows, r.n_rows - r0);
        const uint64_t at = format::triangle_values(r.q_begin, r0) * width;  // the rows before r0
        b.raw_size = static_cast<uint32_t>(format::triangle_values(b.row_begin, b.n_rows) * width);
        b.offset = out.bytes.size();
        auto codec = encoder.encode(p, {raw.data() + at, b.raw_size}, &out.bytes);
        if (!codec.ok()) {
          std::lock_guard lock(error_mutex);
          if (job.error.empty()) job.error = codec.error().message;
          return;
        }
        b.codec = *codec;
        b.stored_size = static_cast<uint32_t>(out.bytes.size() - b.offset);
        b.checksum = checksum64(out.bytes.data() + b.offset, b.stored_size);
        out.blocks.push_back(b);
      }
    }
  });
  return job;
}

}  // namespace

Result<std::unique_ptr<RunWriter>> RunWriter::create(const std::string& dir, RunManifest initial,
                                                     bool overwrite, const WriterOptions& options) {
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
  s->run_uid = random_uid();
  s->precision = initial.precision;
  s->n_layers = initial.n_layers;
  s->n_heads = initial.n_heads;
  s->next_row.assign(static_cast<size_t>(initial.n_layers), 0);
  s->n_tokens = static_cast<int32_t>(initial.tokens.size());
  s->appender = std::make_unique<LogAppender>(dir, s->run_uid, s->precision, s->n_layers, s->n_heads);
  ATTN_RETURN_IF_ERROR(s->appender->open());
  ATTN_RETURN_IF_ERROR(s->write_manifest(initial, /*complete=*/false));

  LogAppender* appender = s->appender.get();
  auto run = [appender](WriteJob& job) {
    Status st = appender->run(job);
    if (!st.ok()) appender->discard_tail();  // before the error is published
    return st;
  };
  ATTN_ASSIGN_OR_RETURN(s->queue, WriteQueue::create(options.queue_bytes, std::move(run)));
  return std::unique_ptr<RunWriter>(new RunWriter(std::move(s)));
}

RunWriter::RunWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunWriter::~RunWriter() = default;

void RunWriter::on_attention(const AttentionRows& rows) {
  Impl& s = *impl_;
  if (!s.known_error().ok()) return;
  if (s.finished) return s.set_error(make_error("{}: attention rows after finish()", s.log_path));
  Status st = s.check(rows);
  if (!st.ok()) return s.set_error(std::move(st).error());
  s.next_row[static_cast<size_t>(rows.layer)] += rows.n_rows;
  (void)s.queue->push(copy_rows(rows, s.precision));  // an error is sticky: the next calls report it
}

Status RunWriter::add_generated_token(const TokenRecord& token) {
  Impl& s = *impl_;
  ATTN_RETURN_IF_ERROR(s.known_error());
  if (s.finished) return make_error("{}: add_generated_token after finish()", s.log_path);
  if (token.text.size() > format::kMaxTokenPayload - sizeof(format::TokenPayload)) {
    return make_error("{}: token {} has {} bytes of text, at most {} can be stored", s.log_path,
                      token.id, token.text.size(), format::kMaxTokenPayload - sizeof(format::TokenPayload));
  }
  ATTN_RETURN_IF_ERROR(s.queue->push(TokenJob{token, s.n_tokens}));
  ++s.n_tokens;
  return ok_status();
}

Status RunWriter::checkpoint(const RunManifest& manifest) {
  Impl& s = *impl_;
  if (s.finished) return make_error("{}: checkpoint after finish()", s.dir);
  (void)s.queue->drain();  // the manifest comes after every record handed over; errors stay sticky
  return s.write_manifest(manifest, /*complete=*/false);
}

Status RunWriter::finish(RunManifest final_manifest) {
  Impl& s = *impl_;
  if (s.finished) return make_error("{}: finish() called twice", s.dir);
  if (Status err = s.drained_error(); !err.ok()) {
    (void)s.write_manifest(final_manifest, /*complete=*/false);  // keep the final tokens, timings
    return err;
  }
  const int32_t rows = *std::max_element(s.next_row.begin(), s.next_row.end());
  if (static_cast<int64_t>(final_manifest.tokens.size()) < rows) {
    return make_error("{}: the final manifest lists {} tokens, but {} rows of attention are stored",
                      s.dir, final_manifest.tokens.size(), rows);
  }
  (void)s.queue->stop();  // drained without error: from here the appender is this thread's
  Status st = s.appender->finish_files();
  if (st.ok()) st = s.write_manifest(final_manifest, /*complete=*/true);  // fsyncs the directory
  if (!st.ok()) {
    s.appender->discard_tail();
    s.set_error(std::move(st).error());
    return s.known_error();
  }
  s.appender->close_log();
  s.finished = true;
  return ok_status();
}

Status RunWriter::status() const { return impl_->drained_error(); }

uint64_t RunWriter::bytes_written() const {
  (void)impl_->queue->drain();
  return impl_->appender->log_size();
}

WriterStats RunWriter::stats() const { return impl_->queue->stats(); }

}  // namespace attnscope::store
