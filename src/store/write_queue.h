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
#include <thread>
#include <variant>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/store.h"

namespace attnscope::store {

// One engine delivery, reduced to the values the log stores.
struct RowsJob {
  int32_t layer = 0;
  int32_t n_heads = 0;
  int32_t q_begin = 0;
  int32_t n_rows = 0;
  // (n_heads, triangle_values(q_begin, n_rows)) values in the run's precision
  // (encode_triangle): per head, rows q_begin.. packed, row r keeping its keys 0..r only
  // (the engine's zeros above the diagonal are not copied). Encoded when handed over, so
  // that the queue holds half (f16) or a quarter (u8) of the f32 bytes.
  std::vector<uint8_t> raw;
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
