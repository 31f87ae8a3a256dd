#include "store/write_queue.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <system_error>

namespace attnscope::store {

uint64_t job_bytes(const WriteJob& job) {
  if (const auto* rows = std::get_if<RowsJob>(&job)) {
    uint64_t bytes = 0;
    for (const EncodedHead& h : rows->heads) bytes += h.bytes.size() + h.blocks.size() * sizeof(EncodedBlock);
    return bytes;
  }
  return std::get<TokenJob>(job).token.text.size();
}

WriteQueue::WriteQueue(uint64_t capacity_bytes, RunFn run)
    : capacity_(capacity_bytes), run_(std::move(run)) {
  stats_.capacity_bytes = capacity_bytes;
}

Result<std::unique_ptr<WriteQueue>> WriteQueue::create(uint64_t capacity_bytes, RunFn run) {
  std::unique_ptr<WriteQueue> q(new WriteQueue(capacity_bytes, std::move(run)));
  if (capacity_bytes == 0) return q;
  // Interrupt signals go to the engine's thread, as before there was a writer thread:
  // the thread inherits this mask.
  sigset_t interrupts, old;
  sigemptyset(&interrupts);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&interrupts, sig);
  pthread_sigmask(SIG_BLOCK, &interrupts, &old);
  Status started;
  try {
    q->thread_ = std::thread([p = q.get()] { p->worker(); });
  } catch (const std::system_error& e) {
    started = make_error("cannot start the writer thread: {}", e.what());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!started.ok()) return std::move(started).error();
  return q;
}

WriteQueue::~WriteQueue() { (void)stop(); }

Status WriteQueue::run_now(WriteJob& job) {
  const uint64_t bytes = job_bytes(job);
  std::lock_guard lock(mu_);
  ++stats_.n_jobs;
  stats_.largest_job_bytes = std::max(stats_.largest_job_bytes, bytes);
  stats_.peak_bytes = std::max(stats_.peak_bytes, bytes);
  if (!error_.ok()) return error_;
  Status st = run_(job);  // under the lock: cheap to hold, one thread
  if (!st.ok()) error_ = std::move(st);
  return error_;
}

Status WriteQueue::push(WriteJob job) {
  if (!thread_.joinable()) return run_now(job);
  const uint64_t bytes = job_bytes(job);
  std::unique_lock lock(mu_);
  auto has_room = [&] { return !error_.ok() || bytes_ == 0 || bytes_ + bytes <= capacity_; };
  if (!has_room()) {
    const auto t0 = std::chrono::steady_clock::now();
    space_cv_.wait(lock, has_room);
    ++stats_.n_waits;
    stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (!error_.ok()) return error_;  // dropped: the log is already cut at the failed job
  ++stats_.n_jobs;
  stats_.largest_job_bytes = std::max(stats_.largest_job_bytes, bytes);
  bytes_ += bytes;
  stats_.peak_bytes = std::max(stats_.peak_bytes, bytes_);
  ++n_undone_;
  jobs_.push_back(std::move(job));
  lock.unlock();
  work_cv_.notify_one();
  return ok_status();
}

void WriteQueue::worker() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return !jobs_.empty() || stopping_; });
    if (jobs_.empty()) return;  // stopping, and every job is done
    WriteJob job = std::move(jobs_.front());
    jobs_.pop_front();
    const bool skip = !error_.ok();
    lock.unlock();
    Status st = skip ? ok_status() : run_(job);
    const uint64_t bytes = job_bytes(job);
    job = WriteJob{};  // free its values before the space is counted free
    lock.lock();
    if (!st.ok() && error_.ok()) error_ = std::move(st);
    bytes_ -= bytes;
    --n_undone_;
    space_cv_.notify_all();  // wakes push() (room) and drain() (n_undone_ == 0)
  }
}

Status WriteQueue::drain() {
  std::unique_lock lock(mu_);
  space_cv_.wait(lock, [&] { return n_undone_ == 0; });
  return error_;
}

Status WriteQueue::stop() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_one();
    thread_.join();  // the worker leaves once every job is done
  }
  return error();
}

Status WriteQueue::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

WriterStats WriteQueue::stats() const {
  std::lock_guard lock(mu_);
  WriterStats s = stats_;
  s.queued_bytes = bytes_;
  return s;
}

}  // namespace attnscope::store
