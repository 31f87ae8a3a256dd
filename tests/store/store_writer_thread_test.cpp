// RunWriter with its writer thread: the log is byte for byte the synchronous writer's
// (queue_bytes = 0), token records stay ahead of their rows, the queue stays within its
// budget, a write error of the thread is sticky and reported, and destroying the writer
// writes what was still queued.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <vector>

#include "attnscope/quant.h"
#include "store/codec.h"
#include "store/format.h"
#include "store/write_queue.h"
#include "store/reader_internal.h"
#include "store/store_test_util.h"

namespace attnscope::store {
namespace {

using testing::read_bytes;
using testing::Synth;
using testing::TempDir;

constexpr uint64_t kSync = 0;  // WriterOptions::queue_bytes: no thread

Synth make_synth(int32_t n_layers, int32_t n_heads, int32_t n_prompt, int32_t n_generated) {
  Synth s;
  s.n_layers = n_layers;
  s.n_heads = n_heads;
  s.n_prompt = n_prompt;
  s.n_generated = n_generated;
  s.build();
  return s;
}

// Writes and finishes a whole run; returns the writer's stats.
WriterStats write_run(const Synth& s, const std::string& dir, Precision p, uint64_t queue_bytes) {
  RunManifest m = s.initial_manifest(p);
  auto w = RunWriter::create(dir, m, false, WriterOptions{.queue_bytes = queue_bytes});
  EXPECT_TRUE(w.ok()) << w.error().message;
  s.run(**w, &m);
  const Status st = (*w)->finish(m);
  EXPECT_TRUE(st.ok()) << st.error().message;
  return (*w)->stats();
}

// A file with the random run_uid and the header checksum that covers it zeroed.
std::vector<uint8_t> without_uid(std::vector<uint8_t> bytes) {
  EXPECT_GE(bytes.size(), 64u);
  std::memset(bytes.data() + 16, 0, 8);  // run_uid (log and index headers)
  std::memset(bytes.data() + 56, 0, 8);  // header checksum
  return bytes;
}

// (kind, layer, head, row_begin, n_rows) of every record of a log, in file order.
using RecordKey = std::tuple<int, int32_t, int32_t, int32_t, int32_t>;
std::vector<RecordKey> log_records(const std::string& log_path) {
  const std::vector<uint8_t> log = read_bytes(log_path);
  std::vector<RecordKey> out;
  for (size_t at = sizeof(format::LogHeader); at < log.size();) {
    format::RecordHeader h;
    EXPECT_LE(at + sizeof h, log.size());
    if (at + sizeof h > log.size()) break;
    std::memcpy(&h, log.data() + at, sizeof h);
    out.emplace_back(h.kind, h.layer, h.head, h.row_begin, h.n_rows);
    at += sizeof h + h.stored_size;
  }
  return out;
}

// The records Synth::run produces, in call order.
std::vector<RecordKey> expected_records(const Synth& s) {
  constexpr int kBlock = static_cast<int>(format::RecordKind::kAttention);
  constexpr int kToken = static_cast<int>(format::RecordKind::kToken);
  std::vector<RecordKey> out;
  for (int32_t l = 0; l < s.n_layers; ++l) {
    for (int32_t r0 = 0; r0 < s.n_prompt; r0 += 64) {
      for (int32_t h = 0; h < s.n_heads; ++h) out.emplace_back(kBlock, l, h, r0, std::min(64, s.n_prompt - r0));
    }
  }
  for (int32_t g = 0; g < s.n_generated; ++g) {
    out.emplace_back(kToken, -1, -1, s.n_prompt + g, 0);
    for (int32_t l = 0; l < s.n_layers; ++l) {
      for (int32_t h = 0; h < s.n_heads; ++h) out.emplace_back(kBlock, l, h, s.n_prompt + g, 1);
    }
  }
  return out;
}

// Every (layer, head) of two runs reads back identically.
void expect_same_probabilities(const std::string& a_dir, const std::string& b_dir) {
  auto a = RunReader::open(a_dir);
  auto b = RunReader::open(b_dir);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_EQ((*a)->n_rows(), (*b)->n_rows());
  const int32_t n = (*a)->n_rows();
  for (int32_t l = 0; l < (*a)->n_layers(); ++l) {
    for (int32_t h = 0; h < (*a)->n_heads(); ++h) {
      auto pa = (*a)->read(l, h, {0, n}, {0, n});
      auto pb = (*b)->read(l, h, {0, n}, {0, n});
      ASSERT_TRUE(pa.ok() && pb.ok());
      ASSERT_EQ(*pa, *pb) << "layer " << l << " head " << h;
    }
  }
}

TEST(WriterThread, LogAndIndexAreByteIdenticalToTheSynchronousWriter) {
  const Synth s = make_synth(3, 4, 130, 20);
  for (Precision p : {Precision::kF32, Precision::kF16, Precision::kU8}) {
    SCOPED_TRACE(precision_name(p));
    TempDir tmp;
    write_run(s, tmp.sub("sync"), p, kSync);
    const std::vector<uint8_t> sync_log = without_uid(read_bytes(tmp.sub("sync/attention.log")));
    const std::vector<uint8_t> sync_index = without_uid(read_bytes(tmp.sub("sync/index.bin")));
    ASSERT_GT(sync_log.size(), 64u);
    for (uint64_t budget : {uint64_t{1}, uint64_t{50000}, WriterOptions{}.queue_bytes}) {
      SCOPED_TRACE(budget);
      const std::string dir = tmp.sub(fmt::format("async-{}", budget));
      const WriterStats st = write_run(s, dir, p, budget);
      EXPECT_EQ(st.capacity_bytes, budget);
      EXPECT_EQ(without_uid(read_bytes(dir + "/attention.log")), sync_log);
      EXPECT_EQ(without_uid(read_bytes(dir + "/index.bin")), sync_index);
      expect_same_probabilities(dir, tmp.sub("sync"));
    }
  }
}

TEST(WriterThread, TokenRecordsPrecedeTheirRowsInCallOrder) {
  const Synth s = make_synth(3, 2, 70, 25);
  for (uint64_t budget : {kSync, uint64_t{1}, WriterOptions{}.queue_bytes}) {
    SCOPED_TRACE(budget);
    TempDir tmp;
    write_run(s, tmp.path(), Precision::kF16, budget);
    EXPECT_EQ(log_records(tmp.sub("attention.log")), expected_records(s));
  }
}

TEST(WriterThread, TheQueueNeverHoldsMoreThanItsBudgetOrOneLargerJob) {
  const Synth s = make_synth(3, 4, 130, 20);
  TempDir tmp;
  constexpr uint64_t kBudget = 20000;
  const WriterStats st = write_run(s, tmp.sub("run"), Precision::kF16, kBudget);
  // A job holds its heads' blocks as stored (f16, compressed) plus one descriptor per
  // block; the largest is a 64-row prefill chunk of 4 heads (one block per head).
  uint64_t largest = 0;
  Encoder enc(kStoreZstdLevel);
  for (int32_t l = 0; l < s.n_layers; ++l) {
    for (int32_t q0 = 0; q0 < s.n_prompt; q0 += 64) {
      const int32_t n = std::min(64, s.n_prompt - q0);
      uint64_t job = 0;
      for (int32_t h = 0; h < s.n_heads; ++h) {
        std::vector<uint8_t> raw;
        for (int32_t i = q0; i < q0 + n; ++i) {
          for (int32_t j = 0; j <= i; ++j) {
            const uint16_t v = quant::f32_to_f16(s.at(l, h, i, j));
            raw.push_back(static_cast<uint8_t>(v & 0xFF));
            raw.push_back(static_cast<uint8_t>(v >> 8));
          }
        }
        std::vector<uint8_t> stored;
        ASSERT_TRUE(enc.encode(Precision::kF16, raw, &stored).ok());
        job += stored.size() + sizeof(EncodedBlock);
      }
      largest = std::max(largest, job);
    }
  }
  EXPECT_EQ(st.largest_job_bytes, largest);
  EXPECT_GT(largest, kBudget);
  EXPECT_LE(st.peak_bytes, std::max(kBudget, largest));
  EXPECT_EQ(st.n_jobs, uint64_t(s.n_layers * 3 + s.n_generated * (1 + s.n_layers)));
  EXPECT_EQ(st.queued_bytes, 0u);
  write_run(s, tmp.sub("sync"), Precision::kF16, kSync);
  expect_same_probabilities(tmp.sub("run"), tmp.sub("sync"));
}

TEST(WriterThread, DestroyingTheWriterWritesWhatIsQueued) {
  const Synth s = make_synth(4, 8, 300, 10);
  TempDir tmp;
  RunManifest m = s.initial_manifest(Precision::kF16);
  WriterStats before;
  {
    auto w = RunWriter::create(tmp.path(), m, false);
    ASSERT_TRUE(w.ok()) << w.error().message;
    s.run(**w, &m);
    before = (*w)->stats();
  }  // interrupted: no status(), checkpoint() or finish()
  if (before.queued_bytes == 0) GTEST_SKIP() << "the writer thread caught up first: nothing was queued";
  auto r = RunReader::open(tmp.path());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE((*r)->complete());
  EXPECT_EQ((*r)->n_rows(), s.n_positions());
  EXPECT_EQ((*r)->manifest().tokens.size(), m.tokens.size());
  EXPECT_EQ(log_records(tmp.sub("attention.log")), expected_records(s));
}

// ---- A write error on the writer thread (RLIMIT_FSIZE: write(2) fails with EFBIG) ----

TEST(WriterThread, AWriteErrorOfTheThreadIsStickyAndReported) {
  const Synth s = make_synth(2, 2, 130, 3);
  TempDir tmp;
  const std::string dir = tmp.sub("run");
  constexpr rlim_t kLimit = 24 * 1024;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit lim{kLimit, kLimit};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(2);
    RunManifest m = s.initial_manifest(Precision::kF16);
    auto w = RunWriter::create(dir, m, false);
    if (!w.ok()) ::_exit(3);
    for (int32_t l = 0; l < s.n_layers; ++l) {  // the prefill: more than the limit
      for (int32_t r0 = 0; r0 < s.n_prompt; r0 += 64) s.deliver(**w, l, r0, std::min(64, s.n_prompt - r0));
    }
    const Status st = (*w)->status();  // waits for the thread: the error is known
    const uint64_t size = (*w)->bytes_written();
    Synth::append_token(&m, s.generated_token(0));
    const Status tok = (*w)->add_generated_token(m.tokens.back());
    for (int32_t l = 0; l < s.n_layers; ++l) s.deliver(**w, l, s.n_prompt, 1);  // dropped
    const Status fin = (*w)->finish(m);
    auto text = [](const Status& x) { return x.ok() ? std::string("ok") : x.error().message; };
    const std::string msg = fmt::format("{}\n{}\n{}\n{}", text(st), text(tok), text(fin),
                                        (*w)->bytes_written() == size ? "same size" : "grew");
    if (::write(fds[1], msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) ::_exit(4);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t k;
  while ((k = ::read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, size_t(k));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  const std::string want = fmt::format("{}/attention.log: write failed: File too large", dir);
  EXPECT_EQ(msg, fmt::format("{0}\n{0}\n{0}\nsame size", want));

  auto r = RunReader::open(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE((*r)->complete());
  EXPECT_EQ((*r)->impl().note, "") << "the thread cuts a torn record off";
  EXPECT_FALSE((*r)->impl().blocks.at(0, 0).empty()) << "the records before the failure are kept";
  EXPECT_LE(std::filesystem::file_size(dir + "/attention.log"), kLimit);
  EXPECT_EQ((*r)->manifest().tokens.size(), size_t(s.n_prompt)) << "no token after the error";
}

}  // namespace
}  // namespace attnscope::store
