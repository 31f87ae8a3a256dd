// capture() interrupted through its cancel flag (the CLI's Ctrl-C) with the writer thread
// running: the run is stored incomplete, with the rows of every token it recorded, and
// they equal an uninterrupted capture's.
#include <gtest/gtest.h>

#include <atomic>

#include "attnscope/capture.h"
#include "store/store_test_util.h"
#include "support/tiny_model.h"

namespace attnscope {
namespace {

using store::testing::TempDir;

TEST(CaptureInterrupt, ACancelledCaptureStoresEveryRowItHandedToTheWriter) {
  testing::TinyModelSpec spec;
  spec.n_layers = 3;
  spec.n_ctx = 128;
  auto path = testing::write_tiny_model(spec, "capture-interrupt");
  ASSERT_TRUE(path.ok()) << path.error().message;
  auto model = Model::load(*path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto identity = identify_model(**model);
  ASSERT_TRUE(identity.ok()) << identity.error().message;

  TempDir tmp;
  CaptureRequest base;
  base.token_ids = std::vector<int32_t>{};
  for (int32_t i = 0; i < 70; ++i) base.token_ids->push_back(3 + (i * 37) % 250);
  base.max_new_tokens = 40;
  base.stop_at_end_of_generation = false;
  base.session.n_threads = 1;
  base.session.n_batch = 64;  // two prefill chunks

  CaptureRequest full = base;
  full.run_dir = tmp.sub("full");
  auto whole = capture(*model, *identity, full);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  auto ref = store::RunReader::open(full.run_dir);
  ASSERT_TRUE(ref.ok()) << ref.error().message;

  for (uint64_t budget : {uint64_t{1}, store::WriterOptions{}.queue_bytes}) {
    SCOPED_TRACE(budget);
    std::atomic<bool> cancel{false};
    CaptureRequest req = base;
    req.run_dir = tmp.sub(fmt::format("cancelled-{}", budget));
    req.cancel = &cancel;
    req.writer.queue_bytes = budget;
    auto res = capture(*model, *identity, req, [&](const CaptureProgress& p) {
      if (std::string_view(p.phase) == "decode" && p.done == 6) cancel.store(true);
    });
    ASSERT_TRUE(res.ok()) << res.error().message;
    EXPECT_TRUE(res->cancelled);
    EXPECT_EQ(res->writer_stats.capacity_bytes, budget);
    EXPECT_EQ(res->writer_stats.queued_bytes, 0u);

    auto r = store::RunReader::open(req.run_dir);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_FALSE((*r)->complete());
    EXPECT_EQ((*r)->manifest().stop_reason, "cancelled");
    const int32_t n = 70 + 6;  // the 6th generated token is fed once more for its row
    ASSERT_EQ((*r)->manifest().tokens.size(), size_t(n));
    ASSERT_EQ((*r)->n_rows(), n);
    for (int32_t l = 0; l < (*r)->n_layers(); ++l) {
      for (int32_t h = 0; h < (*r)->n_heads(); ++h) {
        auto got = (*r)->read(l, h, {0, n}, {0, n});
        auto want = (*ref)->read(l, h, {0, n}, {0, n});
        ASSERT_TRUE(got.ok() && want.ok());
        ASSERT_EQ(*got, *want) << "layer " << l << " head " << h;
      }
    }
  }
}

// Ctrl-C during the prompt stops before the next prompt batch, instead of after the
// whole prompt: the run holds the rows of the batches evaluated, equal to a whole
// capture's, and says it is incomplete.
TEST(CaptureInterrupt, ACancelDuringThePromptStopsAfterTheCurrentBatch) {
  testing::TinyModelSpec spec;
  spec.n_layers = 2;
  spec.n_ctx = 256;
  auto path = testing::write_tiny_model(spec, "capture-interrupt-prompt");
  ASSERT_TRUE(path.ok()) << path.error().message;
  auto model = Model::load(*path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto identity = identify_model(**model);
  ASSERT_TRUE(identity.ok()) << identity.error().message;

  TempDir tmp;
  CaptureRequest base;
  base.token_ids = std::vector<int32_t>{};
  for (int32_t i = 0; i < 150; ++i) base.token_ids->push_back(3 + (i * 53) % 250);
  base.max_new_tokens = 4;
  base.stop_at_end_of_generation = false;
  base.session.n_threads = 2;
  base.session.n_batch = 32;  // five prompt batches

  CaptureRequest full = base;
  full.run_dir = tmp.sub("full");
  ASSERT_TRUE(capture(*model, *identity, full).ok());
  auto ref = store::RunReader::open(full.run_dir);
  ASSERT_TRUE(ref.ok()) << ref.error().message;

  std::atomic<bool> cancel{false};
  CaptureRequest req = base;
  req.run_dir = tmp.sub("cancelled");
  req.cancel = &cancel;
  std::vector<int32_t> prompt_done;
  bool decoded = false;
  auto res = capture(*model, *identity, req, [&](const CaptureProgress& p) {
    if (std::string_view(p.phase) == "decode") decoded = true;
    if (std::string_view(p.phase) != "prefill") return;
    prompt_done.push_back(p.done);
    if (p.done == 64) cancel.store(true);  // during the third batch's turn
  });
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_TRUE(res->cancelled);
  EXPECT_FALSE(decoded);
  EXPECT_EQ(prompt_done, (std::vector<int32_t>{32, 64}));

  auto r = store::RunReader::open(req.run_dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE((*r)->complete());
  EXPECT_EQ((*r)->manifest().stop_reason, "cancelled");
  ASSERT_EQ((*r)->n_rows(), 64);
  for (int32_t l = 0; l < (*r)->n_layers(); ++l) {
    for (int32_t h = 0; h < (*r)->n_heads(); ++h) {
      auto got = (*r)->read(l, h, {0, 64}, {0, 64});
      auto want = (*ref)->read(l, h, {0, 64}, {0, 64});
      ASSERT_TRUE(got.ok() && want.ok());
      ASSERT_EQ(*got, *want) << "layer " << l << " head " << h;
    }
  }
}

}  // namespace
}  // namespace attnscope
