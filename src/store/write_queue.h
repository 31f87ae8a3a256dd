// The writer thread of a run: a FIFO of write jobs (copies of engine deliveries and
// token records) bounded by a byte budget, run one at a time, in order, by one thread.
// Compression and write(2) then overlap with the engine's compute, and the engine only
// waits when the jobs it handed over exceed the budget (backpressure, never dropping).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/store.h"
#include "store/format.h"

namespace attnscope::store {

// One stored attention block of a head (format.h, RecordHeader): its payload is bytes
// [offset, offset + stored_size) of the head's buffer.
struct EncodedBlock {
  int32_t row_begin = 0;
  int32_t n_rows = 0;
  format::Codec codec = format::Codec::kRaw;
  uint32_t raw_size = 0;
  uint32_t stored_size = 0;
  uint64_t offset = 0;
  uint64_t checksum = 0;  // checksum64 of the payload
};
struct EncodedHead {
  std::vector<uint8_t> bytes;  // the payloads of its blocks, in row order
  std::vector<EncodedBlock> blocks;
};

// One engine delivery, reduced to what the log stores: per head, its rows q_begin..
// (row r keeping keys 0..r; the engine's zeros above the diagonal are dropped) in the
// run's precision, cut into blocks (format::block_rows) and compressed and checksummed
// when handed over, on the engine's threads (AttentionRows::for_ranges): the writer
// thread only appends and writes, so on a machine with no core to spare it does not
// preempt the engine, and on one with many the compression is spread over all of them.
struct RowsJob {
  int32_t layer = 0;
  int32_t n_heads = 0;
  int32_t q_begin = 0;
  int32_t n_rows = 0;
  std::vector<EncodedHead> heads;  // (n_heads), every head cut into the same blocks
  std::string error;               // why encoding failed (reported by the writer thread)
};

// One generated token record, at `position` in the sequence.
struct TokenJob {
  TokenRecord token;
  int32_t position = 0;
};

using WriteJob = std::variant<RowsJob, TokenJob>;

// What a job holds against the budget: its heap bytes (the attention values, the token text).
uint64_t job_bytes(const WriteJob& job);

class WriteQueue {
 public:
  using RunFn = std::function<Status(WriteJob&)>;

  // capacity_bytes == 0: no thread; push() runs each job on the caller's thread.
  // Otherwise starts the thread (interrupt signals stay with the caller's threads).
  static Result<std::unique_ptr<WriteQueue>> create(uint64_t capacity_bytes, RunFn run);
  ~WriteQueue();  // stop(): runs every queued job, then joins
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  // Queues a job; blocks while the jobs not yet done hold more than the capacity, unless
  // none is (a job larger than the capacity goes alone). Once a job has failed, later
  // jobs are dropped unrun and push() returns that first error at once.
  Status push(WriteJob job);
  // Waits until every pushed job is done; returns the first job error (sticky).
  Status drain();
  // drain(), then ends the thread: the caller may then use what the jobs use, and later
  // pushes run synchronously. Idempotent.
  Status stop();
  // The first job error so far, without waiting for queued jobs.
  Status error() const;
  WriterStats stats() const;

 private:
  WriteQueue(uint64_t capacity_bytes, RunFn run);
  void worker();
  Status run_now(WriteJob& job);  // synchronous mode

  const uint64_t capacity_;
  RunFn run_;
  std::thread thread_;  // not joinable in synchronous mode and after stop()

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // jobs_ gained a job, or stopping_
  std::condition_variable space_cv_;  // a job is done: bytes_ fell
  std::deque<WriteJob> jobs_;         // waiting (the running one is popped, still counted)
  uint64_t bytes_ = 0;                // job_bytes of the waiting and running jobs
  uint64_t n_undone_ = 0;             // jobs pushed and not done (waiting + running)
  bool stopping_ = false;
  Status error_;
  WriterStats stats_;
};

}  // namespace attnscope::store
