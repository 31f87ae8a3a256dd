// Interrupted and damaged runs: a log truncated at every byte, corrupt records, a
// missing or damaged index, a process killed with SIGKILL mid-capture, a full disk.
// Each must open (or fail with an Error), say it is incomplete, and return exactly the
// rows written before the damage.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "store/format.h"
#include "store/reader_internal.h"
#include "store/store_test_util.h"

namespace attnscope::store {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::Synth;
using testing::TempDir;
using testing::write_bytes;

struct Step {
  uint64_t log_bytes;  // bytes_written() after the step
  int32_t rows;        // rows complete for every (layer, head)
  int32_t n_generated;
};

// Writes a run and records what was durable after every writer call.
std::vector<Step> write_tracked(const Synth& s, const std::string& dir, Precision p, bool finish,
                                RunManifest* m) {
  *m = s.initial_manifest(p);
  auto w = RunWriter::create(dir, *m, false);
  EXPECT_TRUE(w.ok()) << w.error().message;
  std::vector<Step> steps{{(*w)->bytes_written(), 0, 0}};
  s.run(**w, m, [&](const Synth::Progress& pr) {
    steps.push_back({(*w)->bytes_written(), pr.complete_rows(), pr.n_generated});
  });
  if (finish) {
    EXPECT_TRUE((*w)->finish(*m).ok());
  }
  return steps;
}

// Every row < n_rows of every head equals the reference reader's.
void expect_same_rows(const RunReader& r, const RunReader& ref) {
  const int32_t n = r.n_rows();
  for (int32_t l = 0; l < r.n_layers(); ++l) {
    for (int32_t h = 0; h < r.n_heads(); ++h) {
      auto got = r.read(l, h, {0, n}, {0, n});
      auto want = ref.read(l, h, {0, n}, {0, n});
      ASSERT_TRUE(got.ok()) << got.error().message;
      ASSERT_TRUE(want.ok()) << want.error().message;
      ASSERT_EQ(*got, *want) << "layer " << l << " head " << h;
    }
  }
}

// Every row < n_rows against the synthetic source (within the precision's bound).
void expect_synthetic_rows(const RunReader& r, const Synth& s, Precision p) {
  const int32_t n = r.n_rows();
  for (int32_t l = 0; l < r.n_layers(); ++l) {
    for (int32_t h = 0; h < r.n_heads(); ++h) {
      auto got = r.read(l, h, {0, n}, {0, n});
      ASSERT_TRUE(got.ok()) << got.error().message;
      for (int32_t i = 0; i < n; ++i) {
        for (int32_t j = 0; j <= i; ++j) {
          const float want = s.at(l, h, i, j);
          ASSERT_LE(std::fabs(double((*got)[size_t(i) * n + j]) - want), testing::tolerance(p, want));
        }
      }
    }
  }
}

Synth small_synth() {
  Synth s;
  s.n_layers = 2;
  s.n_heads = 2;
  s.n_prompt = 5;
  s.n_generated = 6;
  s.build();
  return s;
}

TEST(Recovery, LogTruncatedAtEveryOffset) {
  const Synth s = small_synth();
  TempDir tmp;
  const std::string full = tmp.sub("full");
  RunManifest m;
  const std::vector<Step> steps = write_tracked(s, full, Precision::kF16, /*finish=*/false, &m);
  auto ref = RunReader::open(full);
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  ASSERT_EQ((*ref)->n_rows(), s.n_positions());
  const std::vector<uint8_t> log = read_bytes(full + "/attention.log");
  ASSERT_EQ(log.size(), steps.back().log_bytes);

  const std::string cut = tmp.sub("cut");
  fs::create_directory(cut);
  fs::copy_file(full + "/manifest.json", cut + "/manifest.json");
  fs::copy_file(full + "/attention.log", cut + "/attention.log");
  for (size_t len = log.size() + 1; len-- > 0;) {  // shrinking: no rewrite (and no flush) per length
    SCOPED_TRACE(len);
    ASSERT_EQ(::truncate((cut + "/attention.log").c_str(), off_t(len)), 0);
    auto r = RunReader::open(cut);
    if (len < sizeof(format::LogHeader)) {  // the header is fsynced before the manifest exists
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().message.find("attention.log"), std::string::npos) << r.error().message;
      continue;
    }
    ASSERT_TRUE(r.ok()) << r.error().message;
    const Step* want = &steps.front();
    for (const Step& st : steps) {
      if (st.log_bytes <= len) want = &st;
    }
    EXPECT_FALSE((*r)->complete());
    ASSERT_EQ((*r)->n_rows(), want->rows);
    const auto& tokens = (*r)->manifest().tokens;
    ASSERT_EQ(tokens.size(), size_t(s.n_prompt + want->n_generated));
    for (size_t i = 0; i < tokens.size(); ++i) {
      EXPECT_EQ(tokens[i].id, m.tokens[i].id);
      EXPECT_EQ(tokens[i].text, m.tokens[i].text);
    }
    const int64_t text_end = tokens.back().byte_end >= 0 ? tokens.back().byte_end : 0;
    EXPECT_EQ((*r)->manifest().text, m.text.substr(0, size_t(std::max<int64_t>(text_end, int64_t(m.prompt.size())))));
    expect_same_rows(**r, **ref);
  }
}

TEST(Recovery, FinishedRunTruncatedWithoutIndexIsIncomplete) {
  const Synth s = small_synth();
  TempDir tmp;
  RunManifest m;
  const std::vector<Step> steps = write_tracked(s, tmp.path(), Precision::kU8, /*finish=*/true, &m);
  auto ref = RunReader::open(tmp.path());
  ASSERT_TRUE(ref.ok());
  const std::vector<uint8_t> log = read_bytes(tmp.sub("attention.log"));
  fs::remove(tmp.sub("index.bin"));
  for (size_t len = log.size() + 7; len >= 64 + 7; len -= 7) {
    ASSERT_EQ(::truncate(tmp.sub("attention.log").c_str(), off_t(std::min(len, log.size()))), 0);
    auto r = RunReader::open(tmp.path());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*r)->complete(), (*r)->n_rows() == s.n_positions()) << len;
    expect_same_rows(**r, **ref);
  }
}

TEST(Recovery, CorruptPayloadIsReportedForThatBlockOnly) {
  const Synth s = small_synth();
  TempDir tmp;
  RunManifest m;
  write_tracked(s, tmp.path(), Precision::kF16, /*finish=*/true, &m);
  auto ref = RunReader::open(tmp.path());
  ASSERT_TRUE(ref.ok());
  const Block b = (*ref)->impl().blocks.at(1, 0).front();  // the prefill block of (1, 0)
  std::vector<uint8_t> log = read_bytes(tmp.sub("attention.log"));
  log[b.offset + sizeof(format::RecordHeader) + b.stored_size / 2] ^= 0x40;
  write_bytes(tmp.sub("attention.log"), log);

  for (bool with_index : {true, false}) {
    SCOPED_TRACE(with_index);
    if (!with_index) fs::remove(tmp.sub("index.bin"));
    auto r = RunReader::open(tmp.path());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*r)->impl().used_index, with_index);
    EXPECT_TRUE((*r)->complete());
    EXPECT_EQ((*r)->n_rows(), s.n_positions());
    auto bad = (*r)->read(1, 0, {0, 3}, {0, 3});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("payload checksum mismatch"), std::string::npos) << bad.error().message;
    EXPECT_NE(bad.error().message.find("layer 1, head 0, rows 0..4"), std::string::npos) << bad.error().message;
    // The decoded rows after the prefill, and every other head, still read.
    EXPECT_TRUE((*r)->read(1, 0, {5, 11}, {0, 11}).ok());
    EXPECT_TRUE((*r)->read(1, 1, {0, 11}, {0, 11}).ok());
    EXPECT_TRUE((*r)->read(0, 0, {0, 11}, {0, 11}).ok());
  }
}

TEST(Recovery, CorruptRecordHeaderEndsTheScan) {
  const Synth s = small_synth();
  TempDir tmp;
  RunManifest m;
  write_tracked(s, tmp.path(), Precision::kF32, /*finish=*/true, &m);
  auto ref = RunReader::open(tmp.path());
  ASSERT_TRUE(ref.ok());
  const Block b = (*ref)->impl().blocks.at(0, 1)[3];  // row 7 of (0, 1)
  ASSERT_EQ(b.row_begin, 7);
  std::vector<uint8_t> log = read_bytes(tmp.sub("attention.log"));
  log[b.offset + 17] ^= 1;  // row_begin
  write_bytes(tmp.sub("attention.log"), log);

  auto indexed = RunReader::open(tmp.path());  // the index still lists the block
  ASSERT_TRUE(indexed.ok());
  auto bad = (*indexed)->read(0, 1, {7, 8}, {0, 8});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("does not match the index"), std::string::npos) << bad.error().message;

  fs::remove(tmp.sub("index.bin"));
  auto scanned = RunReader::open(tmp.path());
  ASSERT_TRUE(scanned.ok()) << scanned.error().message;
  EXPECT_FALSE((*scanned)->complete());
  EXPECT_EQ((*scanned)->n_rows(), 7);
  EXPECT_NE((*scanned)->impl().note.find("bad record header"), std::string::npos) << (*scanned)->impl().note;
  expect_same_rows(**scanned, **ref);
}

TEST(Recovery, MissingOrDamagedIndexFallsBackToScanning) {
  const Synth s = small_synth();
  TempDir tmp, other;
  RunManifest m;
  write_tracked(s, tmp.path(), Precision::kF16, /*finish=*/true, &m);
  write_tracked(s, other.path(), Precision::kF16, /*finish=*/true, &m);
  auto ref = RunReader::open(tmp.path());
  ASSERT_TRUE(ref.ok());
  ASSERT_TRUE((*ref)->impl().used_index);
  const std::vector<uint8_t> index = read_bytes(tmp.sub("index.bin"));

  std::vector<std::vector<uint8_t>> damaged;
  for (size_t len : {size_t{0}, size_t{10}, size_t{64}, size_t{64 + 16}, index.size() - 1}) {
    damaged.emplace_back(index.begin(), index.begin() + long(len));
  }
  for (size_t at : {size_t{3}, size_t{20}, size_t{40}, size_t{70}, index.size() - 2}) {
    damaged.push_back(index);
    damaged.back()[at] ^= 0x10;
  }
  damaged.push_back(read_bytes(other.sub("index.bin")));  // another run's index
  damaged.emplace_back();  // marker: no index.bin at all
  for (size_t i = 0; i < damaged.size(); ++i) {
    SCOPED_TRACE(i);
    if (i + 1 == damaged.size()) fs::remove(tmp.sub("index.bin"));
    else write_bytes(tmp.sub("index.bin"), damaged[i]);
    auto r = RunReader::open(tmp.path());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_FALSE((*r)->impl().used_index);
    EXPECT_TRUE((*r)->complete());
    EXPECT_EQ((*r)->n_rows(), s.n_positions());
    EXPECT_EQ((*r)->manifest().tokens.size(), m.tokens.size());
    expect_same_rows(**r, **ref);
  }
}

// ---- A process killed mid-capture ----

// Child: writes the run, sleeping between decode steps; tells the parent when the run
// directory exists. Never returns.
[[noreturn]] void child_capture(const Synth& s, const std::string& dir, int ready_fd) {
  RunManifest m = s.initial_manifest(Precision::kF16);
  auto w = RunWriter::create(dir, m, false);
  if (!w.ok()) ::_exit(2);
  const char c = 'r';
  if (::write(ready_fd, &c, 1) != 1) ::_exit(3);
  s.run(**w, &m, [](const Synth::Progress&) { std::this_thread::sleep_for(std::chrono::microseconds(700)); });
  ::_exit((*w)->finish(m).ok() ? 0 : 4);
}

TEST(Recovery, SigkillAtRandomTimes) {
  Synth s;
  s.n_layers = 3;
  s.n_heads = 2;
  s.n_prompt = 70;
  s.n_generated = 40;
  s.build();
  std::mt19937 rng(2024);
  int killed_mid_run = 0;
  for (int iter = 0; iter < 10; ++iter) {
    SCOPED_TRACE(iter);
    TempDir tmp;
    const std::string dir = tmp.sub("run");
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      child_capture(s, dir, fds[1]);
    }
    ::close(fds[1]);
    char c = 0;
    ASSERT_EQ(::read(fds[0], &c, 1), 1);  // the run directory exists
    ::close(fds[0]);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 150000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);

    auto r = RunReader::open(dir);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const int32_t n = (*r)->n_rows();
    const auto g = static_cast<int32_t>((*r)->manifest().tokens.size()) - s.n_prompt;
    if (WIFEXITED(status)) {  // finished before the signal
      EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    if ((*r)->complete()) {  // the signal came after finish() (maybe before _exit)
      EXPECT_EQ(n, s.n_positions());
      EXPECT_EQ(g, s.n_generated);
    } else {
      ++killed_mid_run;
      // A token is stored before its rows: g tokens mean rows up to position n_prompt + g - 1
      // may be stored, and all rows before that one are.
      ASSERT_GE(g, 0);
      EXPECT_LE(n, s.n_prompt + g);
      if (g > 0) {
        EXPECT_GE(n, s.n_prompt + g - 1);
      }
    }
    for (int32_t i = 0; i < g; ++i) {
      const TokenRecord& t = (*r)->manifest().tokens[size_t(s.n_prompt + i)];
      EXPECT_EQ(t.id, s.generated_token(i).id);
      EXPECT_EQ(t.text, s.generated_token(i).text);
      EXPECT_TRUE(t.generated);
    }
    expect_synthetic_rows(**r, s, Precision::kF16);
  }
  EXPECT_GE(killed_mid_run, 5);
}

// ---- A full disk (RLIMIT_FSIZE makes write(2) fail with EFBIG) ----

TEST(Recovery, WriteFailureIsKeptAndTheRunOpensIncomplete) {
  Synth s;
  s.n_layers = 2;
  s.n_heads = 2;
  s.n_prompt = 130;
  s.n_generated = 20;
  s.build();
  TempDir tmp;
  const std::string dir = tmp.sub("run");
  constexpr rlim_t kLimit = 48 * 1024;
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
    s.run(**w, &m);
    const Status st = (*w)->status();
    const Status fin = (*w)->finish(m);
    const std::string msg = fmt::format("{}\n{}\n{}", st.ok() ? "ok" : st.error().message,
                                        fin.ok() ? "ok" : fin.error().message,
                                        (*w)->bytes_written());
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

  const std::string log_path = dir + "/attention.log";
  const std::string want = fmt::format("{}: write failed: File too large", log_path);
  EXPECT_EQ(msg.substr(0, msg.find('\n')), want) << msg;      // status()
  EXPECT_NE(msg.find("\n" + want + "\n"), std::string::npos) << msg;  // finish()

  auto r = RunReader::open(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE((*r)->complete());
  EXPECT_GT((*r)->n_rows(), 0);
  EXPECT_LT((*r)->n_rows(), s.n_positions());
  EXPECT_LE(fs::file_size(log_path), kLimit);
  EXPECT_EQ((*r)->impl().note, "") << "the writer cuts a torn record off";
  expect_synthetic_rows(**r, s, Precision::kF16);
}

}  // namespace
}  // namespace attnscope::store
