// Writing a run as the engine delivers it and reading back every (layer, head) and
// arbitrary slices, at each precision; reads touch only the blocks they need.
#include <gtest/gtest.h>

#include <random>

#include "store/reader_internal.h"
#include "store/store_test_util.h"

namespace attnscope::store {
namespace {

using testing::Synth;
using testing::TempDir;

struct Written {
  RunManifest manifest;  // the final one
  uint64_t log_bytes = 0;
};

Written write_run(const Synth& s, const std::string& dir, Precision p, bool finish = true) {
  Written w;
  w.manifest = s.initial_manifest(p);
  auto writer = RunWriter::create(dir, w.manifest, false);
  EXPECT_TRUE(writer.ok()) << writer.error().message;
  if (!writer.ok()) return w;
  s.run(**writer, &w.manifest);
  EXPECT_TRUE((*writer)->status().ok()) << (*writer)->status().error().message;
  w.manifest.stop_reason = "length";
  w.manifest.timings.total_seconds = 1.5;
  w.manifest.complete = true;
  if (finish) {
    Status st = (*writer)->finish(w.manifest);
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
  w.log_bytes = (*writer)->bytes_written();
  return w;
}

// Every value of read(l, h, q, k) against the synthetic source.
void expect_slice(const RunReader& r, const Synth& s, Precision p, int32_t l, int32_t h, Range q, Range k) {
  auto got = r.read(l, h, q, k);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(got->size(), static_cast<size_t>(q.size()) * k.size());
  for (int32_t i = q.begin; i < q.end; ++i) {
    for (int32_t j = k.begin; j < k.end; ++j) {
      const float v = (*got)[static_cast<size_t>(i - q.begin) * k.size() + (j - k.begin)];
      if (j > i) {
        ASSERT_EQ(v, 0.0f) << "above the diagonal at layer " << l << " head " << h << " (" << i << ", " << j << ")";
        continue;
      }
      const float want = s.at(l, h, i, j);
      ASSERT_LE(std::fabs(static_cast<double>(v) - want), testing::tolerance(p, want))
          << "layer " << l << " head " << h << " (" << i << ", " << j << "): got " << v << ", want " << want;
    }
  }
}

class RoundTrip : public ::testing::TestWithParam<Precision> {};

TEST_P(RoundTrip, FullMatricesAndSlices) {
  const Precision p = GetParam();
  Synth s;
  s.build();
  TempDir tmp;
  const std::string dir = tmp.sub("run");
  const Written w = write_run(s, dir, p);

  auto reader = RunReader::open(dir);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const RunReader& r = **reader;
  EXPECT_TRUE(r.complete());
  EXPECT_TRUE(r.impl().used_index) << r.impl().note;
  EXPECT_EQ(r.n_layers(), s.n_layers);
  EXPECT_EQ(r.n_heads(), s.n_heads);
  const int32_t T = s.n_positions();
  ASSERT_EQ(r.n_rows(), T);
  EXPECT_EQ(r.manifest().precision, p);
  EXPECT_EQ(r.manifest().text, w.manifest.text);
  ASSERT_EQ(r.manifest().tokens.size(), w.manifest.tokens.size());
  EXPECT_EQ(r.manifest().tokens.back().text, w.manifest.tokens.back().text);
  EXPECT_EQ(r.manifest().stop_reason, "length");

  for (int32_t l = 0; l < s.n_layers; ++l) {
    for (int32_t h = 0; h < s.n_heads; ++h) expect_slice(r, s, p, l, h, {0, T}, {0, T});
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    auto range = [&] {
      int32_t a = static_cast<int32_t>(rng() % (T + 1)), b = static_cast<int32_t>(rng() % (T + 1));
      return Range{std::min(a, b), std::max(a, b)};
    };
    const auto l = static_cast<int32_t>(rng() % s.n_layers), h = static_cast<int32_t>(rng() % s.n_heads);
    expect_slice(r, s, p, l, h, range(), range());
  }
  // Block edges, single rows and keys, empty ranges.
  expect_slice(r, s, p, 1, 2, {63, 65}, {0, T});
  expect_slice(r, s, p, 2, 3, {127, 131}, {60, 70});
  expect_slice(r, s, p, 0, 0, {T - 1, T}, {T - 1, T});
  expect_slice(r, s, p, 0, 1, {5, 5}, {0, T});
  expect_slice(r, s, p, 0, 1, {0, T}, {7, 7});
}

TEST_P(RoundTrip, BadArgumentsAreErrors) {
  Synth s;
  s.n_prompt = 10;
  s.n_generated = 2;
  s.build();
  TempDir tmp;
  write_run(s, tmp.path(), GetParam());
  auto reader = RunReader::open(tmp.path());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const RunReader& r = **reader;
  const Range all{0, 12};
  for (auto [l, h, q, k] : {std::tuple{-1, 0, all, all}, std::tuple{3, 0, all, all},
                            std::tuple{0, 4, all, all}, std::tuple{0, -1, all, all},
                            std::tuple{0, 0, Range{0, 13}, all}, std::tuple{0, 0, all, Range{-1, 3}},
                            std::tuple{0, 0, Range{5, 4}, all}, std::tuple{0, 0, all, Range{12, 13}}}) {
    auto got = r.read(l, h, q, k);
    ASSERT_FALSE(got.ok()) << l << " " << h << " [" << q.begin << "," << q.end << ") [" << k.begin << "," << k.end << ")";
    EXPECT_NE(got.error().message.find(tmp.path()), std::string::npos) << got.error().message;
  }
  auto bad = r.read(0, 0, Range{0, 13}, all);
  EXPECT_EQ(bad.error().message,
            fmt::format("{}: query range [0, 13) is invalid: expected 0 <= begin <= end <= 12 (rows stored)", tmp.path()));
}

INSTANTIATE_TEST_SUITE_P(Precisions, RoundTrip,
                         ::testing::Values(Precision::kF32, Precision::kF16, Precision::kU8),
                         [](const ::testing::TestParamInfo<Precision>& param) { return std::string(precision_name(param.param)); });

TEST(Store, ReadTouchesOnlyTheBlocksItNeeds) {
  Synth s;
  s.n_layers = 8;
  s.n_heads = 8;
  s.n_prompt = 192;
  s.n_generated = 8;
  s.build();
  TempDir tmp;
  const Written w = write_run(s, tmp.path(), Precision::kF16);
  auto reader = RunReader::open(tmp.path());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const RunReader& r = **reader;
  const uint64_t log_size = r.impl().log_size;
  EXPECT_EQ(log_size, w.log_bytes);
  EXPECT_EQ(r.impl().bytes_read.load(), 0u);

  // One row of one head inside the prefill: one block of 64 rows.
  ASSERT_TRUE(r.read(3, 5, {100, 101}, {0, 101}).ok());
  const uint64_t prefill_row = r.impl().bytes_read.exchange(0);
  EXPECT_GT(prefill_row, 0u);
  EXPECT_LT(prefill_row * 100, log_size) << prefill_row << " of " << log_size;  // < 1%
  // One decoded row: one single-row block.
  ASSERT_TRUE(r.read(3, 5, {195, 196}, {0, 196}).ok());
  const uint64_t decode_row = r.impl().bytes_read.exchange(0);
  EXPECT_LT(decode_row * 1000, log_size) << decode_row << " of " << log_size;  // < 0.1%
  // A whole head: about 1 / (n_layers * n_heads) of the log.
  ASSERT_TRUE(r.read(0, 0, {0, 200}, {0, 200}).ok());
  const uint64_t head = r.impl().bytes_read.exchange(0);
  EXPECT_LT(head * 32, log_size);
}

// Bytes per stored value (the lower triangle) of the synthetic data, for the record.
TEST(Store, BytesPerValue) {
  Synth s;
  s.n_layers = 4;
  s.n_heads = 8;
  s.n_prompt = 256;
  s.n_generated = 16;
  s.build();
  const int32_t T = s.n_positions();
  const double values = double(s.n_layers) * s.n_heads * (double(T) * (T + 1) / 2);
  for (Precision p : {Precision::kF32, Precision::kF16, Precision::kU8}) {
    TempDir tmp;
    const Written w = write_run(s, tmp.path(), p);
    const double bpv = double(w.log_bytes) / values;
    std::printf("synthetic data, %s: %.3f bytes per stored value (log %llu bytes, %.0f values)\n",
                precision_name(p), bpv, static_cast<unsigned long long>(w.log_bytes), values);
    ::testing::Test::RecordProperty(fmt::format("bytes_per_value_{}", precision_name(p)), fmt::format("{:.3f}", bpv));
    EXPECT_LT(bpv, static_cast<double>(p == Precision::kF32 ? 4.2 : p == Precision::kF16 ? 2.1 : 1.1));
  }
}

TEST(Store, UnfinishedRunRecoversEverything) {
  Synth s;
  s.build();
  TempDir tmp;
  const Written w = write_run(s, tmp.path(), Precision::kF16, /*finish=*/false);
  auto reader = RunReader::open(tmp.path());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const RunReader& r = **reader;
  EXPECT_FALSE(r.complete());
  EXPECT_FALSE(r.impl().used_index);
  EXPECT_EQ(r.n_rows(), s.n_positions());
  ASSERT_EQ(r.manifest().tokens.size(), w.manifest.tokens.size());
  for (size_t i = 0; i < w.manifest.tokens.size(); ++i) {
    EXPECT_EQ(r.manifest().tokens[i].id, w.manifest.tokens[i].id);
    EXPECT_EQ(r.manifest().tokens[i].text, w.manifest.tokens[i].text);
    EXPECT_EQ(r.manifest().tokens[i].byte_begin, w.manifest.tokens[i].byte_begin);
    EXPECT_EQ(r.manifest().tokens[i].generated, w.manifest.tokens[i].generated);
  }
  EXPECT_EQ(r.manifest().text, w.manifest.text);
  expect_slice(r, s, Precision::kF16, 2, 3, {0, s.n_positions()}, {0, s.n_positions()});
}

TEST(Store, CheckpointKeepsRecoveryConsistent) {
  Synth s;
  s.n_prompt = 20;
  s.n_generated = 10;
  s.build();
  TempDir tmp;
  RunManifest m = s.initial_manifest(Precision::kU8);
  auto w = RunWriter::create(tmp.path(), m, false);
  ASSERT_TRUE(w.ok()) << w.error().message;
  int steps = 0;
  s.run(**w, &m, [&](const Synth::Progress&) {
    if (++steps == 10) {
      ASSERT_TRUE((*w)->checkpoint(m).ok());  // mid-generation
    }
  });
  w->reset();  // interrupted: no finish
  auto r = RunReader::open(tmp.path());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)->manifest().text, m.text);
  EXPECT_EQ((*r)->manifest().tokens.size(), m.tokens.size());
  EXPECT_EQ((*r)->n_rows(), 30);
}

TEST(Store, LargeDeliveriesAreSplitIntoBlocksOf64Rows) {
  Synth s;
  s.n_layers = 1;
  s.n_heads = 2;
  s.n_prompt = 150;
  s.n_generated = 0;
  s.build();
  TempDir tmp;
  RunManifest m = s.initial_manifest(Precision::kF32);
  auto w = RunWriter::create(tmp.path(), m, false);
  ASSERT_TRUE(w.ok());
  s.deliver(**w, 0, 0, 150);  // one call of 150 rows
  ASSERT_TRUE((*w)->finish(m).ok());
  auto r = RunReader::open(tmp.path());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& blocks = (*r)->impl().blocks.at(0, 1);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[2].row_begin, 128);
  EXPECT_EQ(blocks[2].n_rows, 22);
  expect_slice(**r, s, Precision::kF32, 0, 1, {0, 150}, {0, 150});
}

TEST(Store, MalformedDeliveryIsAStickyError) {
  Synth s;
  s.n_prompt = 8;
  s.n_generated = 0;
  s.build();
  TempDir tmp;
  RunManifest m = s.initial_manifest(Precision::kF16);
  auto w = RunWriter::create(tmp.path(), m, false);
  ASSERT_TRUE(w.ok());
  s.deliver(**w, 0, 0, 8);
  s.deliver(**w, 0, 0, 8);  // the same rows again: not the next row
  ASSERT_FALSE((*w)->status().ok());
  EXPECT_NE((*w)->status().error().message.find("start at row 0, expected row 8"), std::string::npos)
      << (*w)->status().error().message;
  const uint64_t size = (*w)->bytes_written();
  s.deliver(**w, 1, 0, 8);  // ignored
  EXPECT_EQ((*w)->bytes_written(), size);
  EXPECT_FALSE((*w)->finish(m).ok());
  auto r = RunReader::open(tmp.path());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE((*r)->complete());
  EXPECT_EQ((*r)->n_rows(), 0);  // layers 1 and 2 have nothing
}

TEST(Store, FinishChecksAndRefusesTwice) {
  Synth s;
  s.n_prompt = 8;
  s.n_generated = 0;
  s.build();
  TempDir tmp;
  RunManifest m = s.initial_manifest(Precision::kF16);
  auto w = RunWriter::create(tmp.path(), m, false);
  ASSERT_TRUE(w.ok());
  s.run(**w, &m);
  RunManifest short_m = m;
  short_m.tokens.resize(4);
  EXPECT_FALSE((*w)->finish(short_m).ok());  // fewer tokens than rows
  ASSERT_TRUE((*w)->finish(m).ok());
  EXPECT_FALSE((*w)->finish(m).ok());
  EXPECT_FALSE((*w)->checkpoint(m).ok());
}

}  // namespace
}  // namespace attnscope::store
