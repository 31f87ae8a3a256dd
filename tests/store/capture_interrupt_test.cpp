// capture() interrupted through its cancel flag (the CLI's Ctrl-C) with the writer thread
// running: the run is stored incomplete, with the rows of every token it recorded, and
// they equal an uninterrupted capture's.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/capture.h"
#include "store/store_test_util.h"
#include "support/tiny_model.h"

namespace attnscope {
namespace {

using store::testing::TempDir;

// A tiny model of n_layers layers and context n_ctx, loaded, with its identity.
struct Loaded {
  std::shared_ptr<const Model> model;
  store::ModelIdentity identity;
};
void load_tiny(int32_t n_layers, int32_t n_ctx, const std::string& name, Loaded* out) {
  testing::TinyModelSpec spec;
  spec.n_layers = n_layers;
  spec.n_ctx = n_ctx;
  auto path = testing::write_tiny_model(spec, name);
  ASSERT_TRUE(path.ok()) << path.error().message;
  auto model = Model::load(*path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto identity = identify_model(**model);
  ASSERT_TRUE(identity.ok()) << identity.error().message;
  *out = Loaded{std::move(*model), std::move(*identity)};
}

// Rows and keys [0, n) of every layer and head are the same in both runs.
void expect_same_rows(const store::RunReader& got, const store::RunReader& want, int32_t n) {
  for (int32_t l = 0; l < got.n_layers(); ++l) {
    for (int32_t h = 0; h < got.n_heads(); ++h) {
      auto a = got.read(l, h, {0, n}, {0, n});
      auto b = want.read(l, h, {0, n}, {0, n});
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(*a, *b) << "layer " << l << " head " << h;
    }
  }
}

TEST(CaptureInterrupt, ACancelledCaptureStoresEveryRowItHandedToTheWriter) {
  Loaded m;
  ASSERT_NO_FATAL_FAILURE(load_tiny(3, 128, "capture-interrupt", &m));

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
  auto whole = capture(m.model, m.identity, full);
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
    auto res = capture(m.model, m.identity, req, [&](const CaptureProgress& p) {
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
    ASSERT_NO_FATAL_FAILURE(expect_same_rows(**r, **ref, n));
  }
}

// Ctrl-C during the prompt stops before the next prompt batch, instead of after the
// whole prompt: the run holds the rows of the batches evaluated, equal to a whole
// capture's, and says it is incomplete.
TEST(CaptureInterrupt, ACancelDuringThePromptStopsAfterTheCurrentBatch) {
  Loaded m;
  ASSERT_NO_FATAL_FAILURE(load_tiny(2, 256, "capture-interrupt-prompt", &m));

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
  ASSERT_TRUE(capture(m.model, m.identity, full).ok());
  auto ref = store::RunReader::open(full.run_dir);
  ASSERT_TRUE(ref.ok()) << ref.error().message;

  std::atomic<bool> cancel{false};
  CaptureRequest req = base;
  req.run_dir = tmp.sub("cancelled");
  req.cancel = &cancel;
  std::vector<int32_t> prompt_done;
  bool decoded = false;
  auto res = capture(m.model, m.identity, req, [&](const CaptureProgress& p) {
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
  expect_same_rows(**r, **ref, 64);
}

}  // namespace
}  // namespace attnscope
