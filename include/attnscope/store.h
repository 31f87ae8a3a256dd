// The run store: one directory per captured run, holding a JSON manifest and an
// append-only log of compressed attention blocks. Crash-safe by construction: every
// record is self-describing and checksummed, the manifest is replaced atomically, and
// a reader recovers every complete record of an interrupted capture.
// Byte-level layout, goals and non-goals: docs/store-format.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/observer.h"
#include "attnscope/result.h"
#include "attnscope/sampling.h"

namespace attnscope::store {

constexpr int32_t kFormatVersion = 1;

enum class Precision : uint8_t { kF32 = 0, kF16 = 1, kU8 = 2 };
const char* precision_name(Precision p);                  // "f32", "f16", "u8"
Result<Precision> parse_precision(std::string_view name);  // error lists the valid names

struct TokenRecord {
  int32_t id = 0;
  std::string text;         // the bytes this token contributes to the text (UTF-8, may be partial)
  int64_t byte_begin = -1;  // span in RunManifest::text; -1/-1 for tokens with no text (BOS, control)
  int64_t byte_end = -1;
  bool generated = false;
  bool special = false;     // control token (BOS, EOS, <|im_start|>, ...)
};

struct ModelIdentity {
  std::string file_name;     // base name of the GGUF file
  uint64_t file_size = 0;
  std::string content_hash;  // "xxh64:<16 hex digits>" of the whole file
  std::string architecture;
  std::string name;          // general.name
  int32_t n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, n_embd = 0, n_vocab = 0;
  int32_t n_ctx_train = 0;
};

struct Timings {
  std::string started_at;  // ISO 8601 UTC
  double prefill_seconds = 0, decode_seconds = 0, total_seconds = 0;
};

struct RunManifest {
  int32_t format_version = kFormatVersion;
  std::string tool_version;
  std::string id;            // batch-mode run id, else ""
  ModelIdentity model;
  std::string prompt;        // the prompt text as given ("" for --token-ids)
  std::string text;          // prompt + generated text: the text byte spans refer to
  std::vector<TokenRecord> tokens;  // prompt tokens, then generated ones
  int32_t n_prompt = 0;
  SamplingParams sampling;
  int32_t max_new_tokens = 0;
  std::string stop_reason;   // "length", "end-of-generation", ... ("" while running)
  Precision precision = Precision::kF16;
  int32_t n_layers = 0;      // shape of the stored attention
  int32_t n_heads = 0;
  Timings timings;
  // How the engine computed the run (attention values depend on it slightly): the
  // kernels' instruction set, "int8" or "f32" activations, threads. Empty in runs
  // written before these fields existed.
  struct Compute {
    std::string kernels;
    std::string activations;
    int32_t n_threads = 0;
  } compute;
  bool complete = false;
};

// JSON round trip (used by the writer, the reader and the server).
std::string manifest_to_json(const RunManifest& m);
Result<RunManifest> manifest_from_json(std::string_view json, const std::string& source);

struct WriterOptions {
  // Budget of the writer thread's queue: bytes of attention handed over (the deliveries'
  // blocks as stored: compressed, in the run's precision) and of token text, not yet
  // written. A call that would exceed it blocks until the writer thread catches up (a
  // single larger delivery is accepted alone). 64 MiB holds about eight 64-row
  // chunks of a 32-head model at 2048 positions in f16, however badly they compress.
  // 0 = no thread: every call writes before it returns.
  uint64_t queue_bytes = 64ull << 20;
};

// The writer queue's activity since create() (for tuning and tests).
struct WriterStats {
  uint64_t capacity_bytes = 0;     // WriterOptions::queue_bytes
  uint64_t queued_bytes = 0;       // held now (jobs waiting and being written)
  uint64_t peak_bytes = 0;         // most bytes held at once (jobs waiting and being written)
  uint64_t largest_job_bytes = 0;
  uint64_t n_jobs = 0;             // deliveries and token records handed over
  uint64_t n_waits = 0;            // calls that blocked on a full queue
  double wait_seconds = 0;         // total time they blocked
};

// Writes a run directory. As an Observer it stores every attention block it receives.
//
// Threading: call it from one thread (the engine's). on_attention compresses what it
// stores on the engine's threads (AttentionRows::for_ranges) and, like
// add_generated_token, puts it into a bounded queue and returns; a writer thread
// appends it to the log in call order, so the log is byte for byte what a synchronous
// writer (queue_bytes = 0) writes. status(), bytes_written(),
// checkpoint() and finish() first wait for the queue to drain; the destructor writes
// what is queued, then joins the thread. A process killed outright loses at most the
// queued jobs: the log still ends on whole records, in order.
//
// Errors (a full disk, a malformed delivery) are sticky: once one happens, later
// deliveries are dropped. A write error of the writer thread surfaces from the next
// add_generated_token, and from status() and finish(), which return the first error.
class RunWriter : public Observer {
 public:
  // Creates `dir` (and parents). An existing run directory is refused unless
  // `overwrite`; a non-empty directory that is not a run is always refused.
  static Result<std::unique_ptr<RunWriter>> create(const std::string& dir, RunManifest initial,
                                                   bool overwrite, const WriterOptions& options = {});
  ~RunWriter() override;

  // Copies the rows' lower triangles (the engine reuses `rows.probs` once this returns).
  // Blocks only while the queue is over its budget.
  void on_attention(const AttentionRows& rows) override;
  // Appends a generated token before it is fed to the model, so that its rows are
  // never stored without it (it is queued behind the rows before it, ahead of its own).
  // Returns the sticky error known so far, without waiting for the queue.
  Status add_generated_token(const TokenRecord& token);
  // Drains the queue, ends the writer thread, writes the index and replaces the manifest
  // with `final_manifest` (complete = true). After an error: writes it incomplete.
  Status finish(RunManifest final_manifest);
  // Drains the queue, then replaces the manifest atomically (e.g. progress of a long
  // run); complete stays false.
  Status checkpoint(const RunManifest& manifest);
  Status status() const;           // drains the queue first
  uint64_t bytes_written() const;  // bytes appended to attention.log (its header included); drains first
  WriterStats stats() const;       // does not wait

  struct Impl;

 private:
  explicit RunWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct Range {
  int32_t begin = 0;
  int32_t end = 0;  // exclusive
  int32_t size() const { return end - begin; }
};

enum class Aggregate { kNone, kHeadMean, kHeadMax, kLayerMean, kRollout };
const char* aggregate_name(Aggregate a);  // "none", "head-mean", "head-max", "layer-mean", "rollout"
Result<Aggregate> parse_aggregate(std::string_view name);

// Reads a run directory (complete or interrupted).
class RunReader {
 public:
  // Errors name the directory or file: not a run, a future format version, a corrupt
  // manifest. A damaged tail of the block log (an interrupted write) is not an error:
  // the reader keeps every complete record before it.
  static Result<std::unique_ptr<RunReader>> open(const std::string& dir);
  ~RunReader();

  const RunManifest& manifest() const;  // an incomplete run's tokens include the recovered ones
  bool complete() const;
  int32_t n_layers() const;
  int32_t n_heads() const;
  // Positions whose rows are stored for every layer and head (the full sequence when complete).
  int32_t n_rows() const;

  // Probabilities of query rows q over keys k for one head: (q.size(), k.size()) row-major,
  // zeros above the diagonal. Reads and decompresses only the blocks overlapping q.
  Result<std::vector<float>> read(int32_t layer, int32_t head, Range q, Range k) const;
  // An aggregate over heads (layer given) or layers (layer ignored): same shape as read().
  // kNone is read() of `head`.
  Result<std::vector<float>> aggregate(Aggregate kind, int32_t layer, int32_t head, Range q,
                                       Range k) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }  // for src/store (store/reader_internal.h)

 private:
  explicit RunReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace attnscope::store
