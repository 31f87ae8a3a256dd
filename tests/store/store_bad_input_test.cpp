// Directories that are not (healthy) runs: each is refused with an Error that names
// the directory or file and says what was expected.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "store/checksum.h"
#include "store/format.h"
#include "store/store_test_util.h"

namespace attnscope::store {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::Synth;
using testing::TempDir;
using testing::write_bytes;

Synth tiny() {
  Synth s;
  s.n_layers = 2;
  s.n_heads = 2;
  s.n_prompt = 4;
  s.n_generated = 2;
  s.build();
  return s;
}

void write_run(const Synth& s, const std::string& dir, bool overwrite = false) {
  RunManifest m = s.initial_manifest(Precision::kF16);
  auto w = RunWriter::create(dir, m, overwrite);
  ASSERT_TRUE(w.ok()) << w.error().message;
  s.run(**w, &m);
  ASSERT_TRUE((*w)->finish(m).ok());
}

std::string open_error(const std::string& dir) {
  auto r = RunReader::open(dir);
  return r.ok() ? std::string("(opened)") : r.error().message;
}

TEST(BadInput, MissingDirectory) {
  TempDir tmp;
  EXPECT_EQ(open_error(tmp.sub("nope")),
            fmt::format("{}: cannot open the run: No such file or directory", tmp.sub("nope")));
  write_bytes(tmp.sub("file"), {1, 2, 3});
  EXPECT_EQ(open_error(tmp.sub("file")),
            fmt::format("{}: not a directory, expected a run directory", tmp.sub("file")));
}

TEST(BadInput, ForeignDirectory) {
  TempDir tmp;
  EXPECT_EQ(open_error(tmp.path()), fmt::format("{}: no manifest.json: not an attnscope run", tmp.path()));
  write_bytes(tmp.sub("notes.txt"), {'h', 'i'});
  EXPECT_EQ(open_error(tmp.path()), fmt::format("{}: no manifest.json: not an attnscope run", tmp.path()));
}

TEST(BadInput, CreateRefusesANonEmptyDirectoryThatIsNotARun) {
  TempDir tmp;
  write_bytes(tmp.sub("notes.txt"), {'h', 'i'});
  const Synth s = tiny();
  for (bool overwrite : {false, true}) {
    auto w = RunWriter::create(tmp.path(), s.initial_manifest(Precision::kF16), overwrite);
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.error().message, fmt::format("{} is not empty and is not an attnscope run", tmp.path()));
  }
  EXPECT_TRUE(fs::exists(tmp.sub("notes.txt")));
  EXPECT_FALSE(fs::exists(tmp.sub("manifest.json")));
}

TEST(BadInput, CreateRefusesAFileAndABadShape) {
  TempDir tmp;
  write_bytes(tmp.sub("file"), {1});
  const Synth s = tiny();
  EXPECT_FALSE(RunWriter::create(tmp.sub("file"), s.initial_manifest(Precision::kF16), true).ok());
  RunManifest m = s.initial_manifest(Precision::kF16);
  m.n_heads = 0;
  auto w = RunWriter::create(tmp.sub("run"), m, false);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("2 layers x 0 heads"), std::string::npos) << w.error().message;
}

TEST(BadInput, ExistingRunNeedsOverwriteWhichKeepsOtherFiles) {
  TempDir tmp;
  const Synth s = tiny();
  write_run(s, tmp.path());
  write_bytes(tmp.sub("notes.txt"), {'k', 'e', 'e', 'p'});
  fs::create_directory(tmp.sub("plots"));

  auto refused = RunWriter::create(tmp.path(), s.initial_manifest(Precision::kF16), false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            fmt::format("{} already holds an attnscope run: choose another directory or overwrite it", tmp.path()));
  // A run with another shape replaces it; the unrelated files stay.
  Synth other = tiny();
  other.n_layers = 3;
  other.build();
  write_run(other, tmp.path(), /*overwrite=*/true);
  EXPECT_EQ(read_bytes(tmp.sub("notes.txt")), (std::vector<uint8_t>{'k', 'e', 'e', 'p'}));
  EXPECT_TRUE(fs::is_directory(tmp.sub("plots")));
  auto r = RunReader::open(tmp.path());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)->n_layers(), 3);
  EXPECT_TRUE((*r)->complete());
}

TEST(BadInput, AnInterruptedRunCanBeOverwritten) {
  TempDir tmp;
  const Synth s = tiny();
  {
    RunManifest m = s.initial_manifest(Precision::kF16);
    auto w = RunWriter::create(tmp.path(), m, false);
    ASSERT_TRUE(w.ok());
  }  // never finished: index.bin.tmp is left behind
  EXPECT_TRUE(fs::exists(tmp.sub("index.bin.tmp")));
  write_run(s, tmp.path(), /*overwrite=*/true);
  EXPECT_FALSE(fs::exists(tmp.sub("index.bin.tmp")));
  EXPECT_FALSE(fs::exists(tmp.sub("manifest.json.tmp")));
}

TEST(BadInput, FutureFormatVersionInTheManifest) {
  TempDir tmp;
  write_run(tiny(), tmp.path());
  auto j = nlohmann::json::parse(read_bytes(tmp.sub("manifest.json")));
  j["format_version"] = 7;
  const std::string text = j.dump();
  write_bytes(tmp.sub("manifest.json"), std::vector<uint8_t>(text.begin(), text.end()));
  EXPECT_EQ(open_error(tmp.path()),
            fmt::format("{}/manifest.json: format version 7 is newer than this attnscope (1): upgrade attnscope",
                        tmp.path()));
}

TEST(BadInput, FutureFormatVersionInTheLog) {
  TempDir tmp;
  write_run(tiny(), tmp.path());
  std::vector<uint8_t> log = read_bytes(tmp.sub("attention.log"));
  format::LogHeader h;
  std::memcpy(&h, log.data(), sizeof h);
  h.format_version = 7;
  h.checksum = checksum64(&h, offsetof(format::LogHeader, checksum));
  std::memcpy(log.data(), &h, sizeof h);
  write_bytes(tmp.sub("attention.log"), log);
  EXPECT_EQ(open_error(tmp.path()),
            fmt::format("{}/attention.log: format version 7 is newer than this attnscope (1): upgrade attnscope",
                        tmp.path()));
}

TEST(BadInput, CorruptManifest) {
  TempDir tmp;
  write_run(tiny(), tmp.path());
  std::vector<uint8_t> text = read_bytes(tmp.sub("manifest.json"));
  text.resize(text.size() / 2);
  write_bytes(tmp.sub("manifest.json"), text);
  const std::string err = open_error(tmp.path());
  EXPECT_EQ(err.rfind(fmt::format("{}/manifest.json: not valid JSON: ", tmp.path()), 0), 0u) << err;
}

TEST(BadInput, ManifestAndLogMismatch) {
  TempDir a, b;
  write_run(tiny(), a.path());
  write_run(tiny(), b.path());
  // The other run's manifest: same shape, another run_uid.
  fs::copy_file(b.sub("manifest.json"), a.sub("manifest.json"), fs::copy_options::overwrite_existing);
  std::string err = open_error(a.path());
  EXPECT_NE(err.find("belong to different runs"), std::string::npos) << err;

  // Another shape.
  auto j = nlohmann::json::parse(read_bytes(b.sub("manifest.json")));
  j["attention"]["n_heads"] = 3;
  std::string text = j.dump();
  write_bytes(b.sub("manifest.json"), std::vector<uint8_t>(text.begin(), text.end()));
  EXPECT_EQ(open_error(b.path()),
            fmt::format("{}: manifest.json and attention.log disagree: the manifest says 2 layers x 3 "
                        "heads at f16, the log 2 layers x 2 heads at f16",
                        b.path()));

  // No log at all.
  fs::remove(a.sub("attention.log"));
  err = open_error(a.path());
  EXPECT_NE(err.find("the manifest has no attention log"), std::string::npos) << err;
}

TEST(BadInput, DamagedLogHeader) {
  TempDir tmp;
  write_run(tiny(), tmp.path());
  std::vector<uint8_t> log = read_bytes(tmp.sub("attention.log"));
  log[30] ^= 1;  // n_heads: the checksum no longer matches
  write_bytes(tmp.sub("attention.log"), log);
  EXPECT_EQ(open_error(tmp.path()),
            fmt::format("{}/attention.log: header checksum mismatch: the header is corrupt", tmp.path()));
  log[0] = 'X';
  write_bytes(tmp.sub("attention.log"), log);
  EXPECT_EQ(open_error(tmp.path()),
            fmt::format("{}/attention.log: not an attnscope attention log (bad magic)", tmp.path()));
}

}  // namespace
}  // namespace attnscope::store
