// ThreadPool::parallel_for: every index exactly once in disjoint contiguous ranges, for any
// size and thread count, over many back-to-back jobs (as decoding issues them); and a
// thread held up inside one range does not keep the others from doing the rest.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "model/thread_pool.h"

namespace attnscope {
namespace {

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (int32_t threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 8, 9, 31, 32, 33, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> bad_ranges{0};
      pool.parallel_for(n, [&](int64_t begin, int64_t end) {
        if (begin < 0 || end > n || begin >= end) ++bad_ranges;
        for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      });
      EXPECT_EQ(bad_ranges.load(), 0) << threads << " threads, n=" << n;
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " threads, n=" << n;
    }
  }
}

TEST(ThreadPool, ManyJobsInARow) {
  ThreadPool pool(3);
  std::vector<int64_t> sums(64, 0);
  for (int job = 0; job < 3000; ++job) {
    const int64_t n = 1 + job % 64;
    std::atomic<int64_t> sum{0};
    pool.parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum.fetch_add(i + 1);
    });
    ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "job " << job;
  }
}

TEST(ThreadPool, OthersFinishTheRangesOfAThreadHeldUp) {
  // The first range to start waits until every other index is done, and it must be a
  // small part of the job: with one fixed range per thread, half the work would wait for
  // the held thread; with ranges handed out in turn the other thread takes over all but
  // the one range being held. The wait gives up after 10 s, so a regression fails
  // instead of hanging.
  ThreadPool pool(2);
  const int64_t n = 64;
  std::mutex m;
  std::condition_variable cv;
  int64_t done = 0;
  std::atomic<bool> first{true};
  bool finished_others = false;
  int64_t held = 0;
  pool.parallel_for(n, [&](int64_t begin, int64_t end) {
    if (first.exchange(false)) {
      std::unique_lock<std::mutex> lock(m);
      held = end - begin;
      finished_others = cv.wait_for(lock, std::chrono::seconds(10), [&] { return done == n - (end - begin); });
      done += end - begin;
      return;
    }
    std::lock_guard<std::mutex> lock(m);
    done += end - begin;
    cv.notify_all();
  });
  EXPECT_TRUE(finished_others);
  EXPECT_LE(held, n / 4);
  EXPECT_EQ(done, n);
}

}  // namespace
}  // namespace attnscope
