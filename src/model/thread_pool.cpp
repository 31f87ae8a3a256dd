#include "model/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ATTN_CPU_RELAX() _mm_pause()
#else
#define ATTN_CPU_RELAX() std::this_thread::yield()
#endif

namespace attnscope {
namespace {

// How long an idle worker polls for the next job before it sleeps: longer than the
// gaps between the matrix products of a decoding step, short enough not to burn a
// core while the caller samples, writes the store or waits for input.
constexpr auto kSpin = std::chrono::microseconds(300);

// Chunks per thread and job: enough that the others can take over from a preempted
// thread, few enough that handing them out costs nothing next to the work.
constexpr int64_t kChunksPerThread = 4;

// Range of part `i` of `parts` over [0, n).
std::pair<int64_t, int64_t> split_range(int64_t n, int32_t parts, int32_t i) {
  const int64_t base = n / parts, extra = n % parts;
  const int64_t begin = i * base + std::min<int64_t>(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

}  // namespace

ThreadPool::ThreadPool(int32_t n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int32_t i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_chunks_ = std::min<int64_t>(n, kChunksPerThread * n_threads_);
  next_chunk_.store(0, std::memory_order_relaxed);
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  bool wake = false;
  {
    // Under the mutex, so that a worker deciding to sleep either sees the new
    // generation or is counted in sleeping_ (no lost wake-up).
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
    wake = sleeping_ > 0;
  }
  if (wake) start_cv_.notify_all();
  run_chunks();
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) {
      ATTN_CPU_RELAX();
    } else {
      std::this_thread::yield();  // a long job, or more threads than cores
    }
  }
  job_ = nullptr;
}

void ThreadPool::run_chunks() {
  for (;;) {
    const int64_t i = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (i >= job_chunks_) return;
    auto [begin, end] = split_range(job_n_, static_cast<int32_t>(job_chunks_), static_cast<int32_t>(i));
    if (begin < end) (*job_)(begin, end);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    // Wait for the next generation: poll for kSpin, then sleep.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (gen == seen) {
      const auto deadline = std::chrono::steady_clock::now() + kSpin;
      for (int spins = 0; gen == seen; ++spins) {
        ATTN_CPU_RELAX();
        gen = generation_.load(std::memory_order_acquire);
        if (gen == seen && spins % 64 == 63 && std::chrono::steady_clock::now() > deadline) {
          std::unique_lock<std::mutex> lock(mutex_);
          ++sleeping_;
          start_cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
          --sleeping_;
          gen = generation_.load(std::memory_order_acquire);
        }
      }
    }
    seen = gen;
    if (stop_.load()) return;
    run_chunks();
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace attnscope
