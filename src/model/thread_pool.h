// A fixed set of worker threads that split index ranges. The calling thread takes
// part, so a pool of size 1 runs everything inline.
//
// Decoding hands the pool hundreds of small jobs per token (every matrix product of
// every layer), so waking threads through a condition variable each time would cost
// more than the work. Workers therefore spin for a short while (kSpin) after a job,
// waiting for the next one, and only then sleep; the caller spins while the workers
// finish their parts.
//
// A job is cut into a few chunks per thread that the threads take in turn (an atomic
// counter), not one fixed range per thread: when another thread of the process (the
// store's writer) or of the machine takes a core for a while, the others take over the
// chunks the preempted thread has not started, instead of all waiting for it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace attnscope {

class ThreadPool {
 public:
  explicit ThreadPool(int32_t n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int32_t size() const { return n_threads_; }

  // Calls fn(begin, end) on disjoint contiguous ranges covering [0, n), in any order and
  // on any of the threads (a thread may get several ranges), and returns when all are
  // done. Not reentrant: one caller at a time.
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void worker_loop();
  void run_chunks();  // takes chunks of the current job until none is left

  int32_t n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;               // guards sleeping_ and the sleep/wake hand-off
  std::condition_variable start_cv_;
  int32_t sleeping_ = 0;           // workers blocked on start_cv_
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;  // published by generation_
  int64_t job_n_ = 0;
  int64_t job_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};   // the next chunk of the current job to hand out
  std::atomic<uint64_t> generation_{0};  // incremented once per job (release)
  std::atomic<int32_t> pending_{0};      // workers still running the current job
  std::atomic<bool> stop_{false};
};

}  // namespace attnscope
