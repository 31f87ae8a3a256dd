// The writer thread's queue on its own, with a sink the test controls: jobs run in push
// order on another thread, push() blocks at the byte budget (and never holds more than
// the budget, or one larger job alone), a failed job is sticky, and destruction runs
// every queued job.
#include "store/write_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace attnscope::store {
namespace {

using namespace std::chrono_literals;

// A token job of `bytes` budget bytes, tagged with its push index.
WriteJob job(int32_t index, size_t bytes = 8) {
  TokenJob t;
  t.position = index;
  t.token.text.assign(bytes, 'x');
  return t;
}

int32_t index_of(const WriteJob& j) { return std::get<TokenJob>(j).position; }

// A sink that records what ran, and where; closed, it holds every job until opened.
class Sink {
 public:
  explicit Sink(bool open = true) : open_(open) {}

  WriteQueue::RunFn fn() {
    return [this](WriteJob& j) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return open_; });
      ran_.push_back(index_of(j));
      threads_.push_back(std::this_thread::get_id());
      if (delay_ > 0ms) std::this_thread::sleep_for(delay_);
      if (index_of(j) == fail_at_) return Status(make_error("disk full at job {}", fail_at_));
      return ok_status();
    };
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void fail_at(int32_t index) { fail_at_ = index; }
  void delay(std::chrono::milliseconds d) { delay_ = d; }
  std::vector<int32_t> ran() const {
    std::lock_guard lock(mu_);
    return ran_;
  }
  std::vector<std::thread::id> threads() const {
    std::lock_guard lock(mu_);
    return threads_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_;
  int32_t fail_at_ = -1;
  std::chrono::milliseconds delay_{0};
  std::vector<int32_t> ran_;
  std::vector<std::thread::id> threads_;
};

std::vector<int32_t> iota(int32_t n) {
  std::vector<int32_t> v;
  for (int32_t i = 0; i < n; ++i) v.push_back(i);
  return v;
}

// Waits (up to 10 s) until pred() holds.
template <typename Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 10000 && !pred(); ++i) std::this_thread::sleep_for(1ms);
  return pred();
}

TEST(WriteQueue, RunsJobsInPushOrderOnItsOwnThread) {
  Sink sink;
  auto q = WriteQueue::create(1 << 20, sink.fn());
  ASSERT_TRUE(q.ok()) << q.error().message;
  for (int32_t i = 0; i < 500; ++i) ASSERT_TRUE((*q)->push(job(i)).ok());
  ASSERT_TRUE((*q)->drain().ok());
  EXPECT_EQ(sink.ran(), iota(500));
  for (std::thread::id t : sink.threads()) ASSERT_NE(t, std::this_thread::get_id());
  EXPECT_EQ((*q)->stats().n_jobs, 500u);
  EXPECT_EQ((*q)->stats().queued_bytes, 0u);
}

TEST(WriteQueue, PushBlocksAtTheBudgetUntilTheSinkCatchesUp) {
  Sink sink(/*open=*/false);
  auto q = WriteQueue::create(1000, sink.fn());
  ASSERT_TRUE(q.ok());
  std::atomic<int32_t> pushed{0};
  std::thread producer([&] {
    for (int32_t i = 0; i < 10; ++i) {
      EXPECT_TRUE((*q)->push(job(i, 300)).ok());
      pushed.store(i + 1);
    }
  });
  // The sink holds job 0; jobs 0..2 fit in 1000 bytes, job 3 would make 1200.
  const bool reached = eventually([&] { return pushed.load() >= 3; });
  std::this_thread::sleep_for(100ms);
  const int32_t pushed_while_blocked = pushed.load();
  const uint64_t queued_while_blocked = (*q)->stats().queued_bytes;
  sink.open();
  producer.join();
  EXPECT_TRUE(reached);
  EXPECT_EQ(pushed_while_blocked, 3) << "push() went past the budget";
  EXPECT_EQ(queued_while_blocked, 900u);
  ASSERT_TRUE((*q)->drain().ok());
  EXPECT_EQ(sink.ran(), iota(10));
  const WriterStats st = (*q)->stats();
  EXPECT_LE(st.peak_bytes, 1000u);
  EXPECT_EQ(st.largest_job_bytes, 300u);
  EXPECT_GE(st.n_waits, 1u);
  EXPECT_GT(st.wait_seconds, 0.05);
}

TEST(WriteQueue, AJobLargerThanTheBudgetGoesAlone) {
  Sink sink(/*open=*/false);
  auto q = WriteQueue::create(100, sink.fn());
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE((*q)->push(job(0, 500)).ok());  // an empty queue takes it: no deadlock
  std::atomic<bool> second{false};
  std::thread producer([&] {
    EXPECT_TRUE((*q)->push(job(1, 500)).ok());
    second.store(true);
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(second.load()) << "a second oversized job joined the first";
  sink.open();
  producer.join();
  ASSERT_TRUE((*q)->drain().ok());
  EXPECT_EQ(sink.ran(), iota(2));
  EXPECT_EQ((*q)->stats().peak_bytes, 500u);  // one job, never two
}

TEST(WriteQueue, AFailedJobIsStickyAndLaterJobsAreDropped) {
  Sink sink(/*open=*/false);
  sink.fail_at(5);
  auto q = WriteQueue::create(1 << 20, sink.fn());
  ASSERT_TRUE(q.ok());
  for (int32_t i = 0; i < 20; ++i) ASSERT_TRUE((*q)->push(job(i)).ok());  // nothing ran yet
  EXPECT_TRUE((*q)->error().ok());
  sink.open();
  const Status st = (*q)->drain();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "disk full at job 5");
  EXPECT_EQ(sink.ran(), iota(6));  // 6..19 dropped
  EXPECT_EQ((*q)->error().error().message, "disk full at job 5");
  const Status later = (*q)->push(job(20));
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.error().message, "disk full at job 5");
  EXPECT_EQ((*q)->stop().error().message, "disk full at job 5");
  EXPECT_EQ(sink.ran(), iota(6));
  EXPECT_EQ((*q)->stats().queued_bytes, 0u);
}

TEST(WriteQueue, DestructionRunsEveryQueuedJob) {
  Sink sink;
  sink.delay(2ms);
  {
    auto q = WriteQueue::create(1 << 20, sink.fn());
    ASSERT_TRUE(q.ok());
    for (int32_t i = 0; i < 50; ++i) ASSERT_TRUE((*q)->push(job(i)).ok());
    ASSERT_GT((*q)->stats().queued_bytes, 0u) << "the sink should still be busy";
  }
  EXPECT_EQ(sink.ran(), iota(50));
}

TEST(WriteQueue, ZeroCapacityRunsOnTheCallersThread) {
  Sink sink;
  sink.fail_at(3);
  auto q = WriteQueue::create(0, sink.fn());
  ASSERT_TRUE(q.ok());
  for (int32_t i = 0; i < 3; ++i) {
    ASSERT_TRUE((*q)->push(job(i)).ok());
    EXPECT_EQ(sink.ran().size(), size_t(i) + 1);  // ran before push() returned
  }
  const Status st = (*q)->push(job(3));
  ASSERT_FALSE(st.ok());  // this job's own error, at once
  EXPECT_EQ(st.error().message, "disk full at job 3");
  EXPECT_FALSE((*q)->push(job(4)).ok());
  EXPECT_EQ(sink.ran(), iota(4));
  for (std::thread::id t : sink.threads()) EXPECT_EQ(t, std::this_thread::get_id());
}

TEST(WriteQueue, AfterStopPushRunsSynchronously) {
  Sink sink;
  auto q = WriteQueue::create(1 << 20, sink.fn());
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE((*q)->push(job(0)).ok());
  ASSERT_TRUE((*q)->stop().ok());
  EXPECT_EQ(sink.ran(), iota(1));
  ASSERT_TRUE((*q)->push(job(1)).ok());
  EXPECT_EQ(sink.ran(), iota(2));
  EXPECT_EQ(sink.threads().back(), std::this_thread::get_id());
  EXPECT_TRUE((*q)->stop().ok());  // idempotent
}

}  // namespace
}  // namespace attnscope::store
