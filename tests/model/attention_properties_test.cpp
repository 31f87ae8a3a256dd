// Properties every attention matrix must have whatever the weights: rows are
// probability distributions, causal and windowed masks are exact zeros, soft-capping
// bounds the ratio of probabilities, and batching, chunking and threading do not
// change the result.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <string>

#include "attnscope/model.h"
#include "attnscope/session.h"
#include "support/attention_collector.h"
#include "support/tiny_model.h"

namespace attnscope {
namespace {

using testing::AttentionCollector;
using testing::TinyModelSpec;

std::shared_ptr<const Model> load(const TinyModelSpec& spec, const std::string& name) {
  auto path = testing::write_tiny_model(spec, name);
  EXPECT_TRUE(path.ok()) << path.error().message;
  if (!path.ok()) return nullptr;
  auto model = Model::load(*path);
  EXPECT_TRUE(model.ok()) << model.error().message;
  return model.ok() ? *model : nullptr;
}

std::vector<int32_t> some_tokens(int32_t n) {
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < n; ++i) ids.push_back(3 + (i * 37 + 11) % 280);
  return ids;
}

struct Capture {
  std::unique_ptr<AttentionCollector> attn;
  std::vector<float> last_logits;
};

// Evaluates `ids` in pieces of `step` tokens (0 = all at once).
Capture run(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& ids, SessionOptions o,
        size_t step = 0) {
  const ModelConfig& c = model->config();
  Capture r{std::make_unique<AttentionCollector>(c.n_layers, c.n_heads, static_cast<int32_t>(ids.size())), {}};
  auto session = Session::create(model, o);
  EXPECT_TRUE(session.ok());
  if (step == 0) step = ids.size();
  for (size_t i = 0; i < ids.size(); i += step) {
    const size_t n = std::min(step, ids.size() - i);
    auto st = (*session)->eval(std::span<const int32_t>(ids).subspan(i, n), r.attn.get());
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
  auto last = (*session)->last_logits();
  r.last_logits.assign(last.begin(), last.end());
  return r;
}

TEST(AttentionProperties, RowsAreCausalDistributions) {
  auto model = load(TinyModelSpec{}, "prop_rows");
  ASSERT_TRUE(model);
  const int32_t T = 20;
  Capture r = run(model, some_tokens(T), SessionOptions{.n_threads = 2, .q_chunk = 6});
  EXPECT_EQ(r.attn->malformed(), 0);
  for (int32_t l = 0; l < 2; ++l) {
    for (int32_t h = 0; h < 4; ++h) {
      for (int32_t i = 0; i < T; ++i) {
        ASSERT_EQ(r.attn->deliveries(l, i), 1);
        double sum = 0;
        for (int32_t j = 0; j <= i; ++j) {
          EXPECT_GE(r.attn->at(l, h, i, j), 0.0f);
          sum += r.attn->at(l, h, i, j);
        }
        EXPECT_NEAR(sum, 1.0, 1e-5) << "layer " << l << " head " << h << " row " << i;
      }
    }
  }
  EXPECT_FLOAT_EQ(r.attn->at(0, 0, 0, 0), 1.0f);  // the first token can only see itself
}

TEST(AttentionProperties, SlidingWindowMasksExactlyTheOldKeys) {
  TinyModelSpec windowed;
  windowed.sliding_window = 4;
  auto model_w = load(windowed, "prop_window");
  auto model_full = load(TinyModelSpec{}, "prop_full");
  ASSERT_TRUE(model_w && model_full);
  const int32_t T = 16, W = 4;
  Capture w = run(model_w, some_tokens(T), SessionOptions{.n_threads = 1});
  Capture f = run(model_full, some_tokens(T), SessionOptions{.n_threads = 1});
  for (int32_t l = 0; l < 2; ++l) {
    for (int32_t h = 0; h < 4; ++h) {
      for (int32_t i = 0; i < T; ++i) {
        double sum = 0;
        for (int32_t j = 0; j <= i; ++j) {
          if (j <= i - W) {
            EXPECT_EQ(w.attn->at(l, h, i, j), 0.0f) << i << "," << j;
          }
          sum += w.attn->at(l, h, i, j);
          // Rows before the window first bites see every key in both models.
          if (i < W) {
            EXPECT_FLOAT_EQ(w.attn->at(l, h, i, j), f.attn->at(l, h, i, j));
          }
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
      }
    }
  }
}

TEST(AttentionProperties, SoftCappingBoundsTheProbabilityRatio) {
  // With |score| <= cap, no allowed key can be more than e^(2 cap) times as likely as another.
  TinyModelSpec capped;
  capped.attn_softcap = 0.5f;
  capped.weight_scale = 2.0f;  // large scores, so the cap matters
  auto model = load(capped, "prop_softcap");
  ASSERT_TRUE(model);
  const int32_t T = 12;
  Capture r = run(model, some_tokens(T), SessionOptions{.n_threads = 1});
  const double bound = std::exp(2.0 * 0.5) * (1 + 1e-5);
  for (int32_t l = 0; l < 2; ++l) {
    for (int32_t h = 0; h < 4; ++h) {
      for (int32_t i = 1; i < T; ++i) {
        float lo = 1, hi = 0;
        for (int32_t j = 0; j <= i; ++j) {
          lo = std::min(lo, r.attn->at(l, h, i, j));
          hi = std::max(hi, r.attn->at(l, h, i, j));
        }
        EXPECT_LE(hi / lo, bound) << "layer " << l << " head " << h << " row " << i;
      }
    }
  }
  // An enormous cap is the identity.
  TinyModelSpec huge = capped;
  huge.attn_softcap = 1e6f;
  TinyModelSpec none = capped;
  none.attn_softcap = 0;
  Capture a = run(load(huge, "prop_softcap_huge"), some_tokens(T), SessionOptions{.n_threads = 1});
  Capture b = run(load(none, "prop_softcap_none"), some_tokens(T), SessionOptions{.n_threads = 1});
  for (int32_t i = 0; i < T; ++i) {
    for (int32_t j = 0; j <= i; ++j) EXPECT_NEAR(a.attn->at(1, 2, i, j), b.attn->at(1, 2, i, j), 1e-5);
  }
}

TEST(AttentionProperties, BatchingChunkingAndThreadsDoNotChangeTheResult) {
  auto model = load(TinyModelSpec{}, "prop_batching");
  ASSERT_TRUE(model);
  const auto ids = some_tokens(23);
  Capture whole = run(model, ids, SessionOptions{.n_threads = 1, .n_batch = 64, .q_chunk = 64});
  Capture batched = run(model, ids, SessionOptions{.n_threads = 2, .n_batch = 5, .q_chunk = 3});
  Capture one_by_one = run(model, ids, SessionOptions{.n_threads = 2}, /*step=*/1);
  for (const Capture* other : {&batched, &one_by_one}) {
    for (int32_t l = 0; l < 2; ++l) {
      for (int32_t h = 0; h < 4; ++h) {
        for (int32_t i = 0; i < 23; ++i) {
          ASSERT_EQ(other->attn->deliveries(l, i), 1);
          for (int32_t j = 0; j <= i; ++j) {
            EXPECT_NEAR(other->attn->at(l, h, i, j), whole.attn->at(l, h, i, j), 1e-6);
          }
        }
      }
    }
    ASSERT_EQ(other->last_logits.size(), whole.last_logits.size());
    for (size_t v = 0; v < whole.last_logits.size(); ++v) {
      EXPECT_NEAR(other->last_logits[v], whole.last_logits[v], 1e-4);
    }
  }
}

// The int8 path on Q8_0 weights multiplies with packed panels (the model's 286-token
// vocabulary ends in a partial panel) and splits rows between threads in whole panels; a
// tied embedding is looked up in the panels. None of it may depend on how the tokens are
// batched or the work split: the same bits.
TEST(AttentionProperties, PackedQ8_0GivesTheSameBitsForAnyBatchingAndThreads) {
  for (const bool tied : {false, true}) {
    SCOPED_TRACE(tied ? "tied output" : "own output");
    TinyModelSpec spec;
    spec.n_ff = 64;  // Q8_0 rows are whole blocks of 32
    spec.own_output = !tied;
    for (int l = 0; l < spec.n_layers; ++l) {
      for (const char* t : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
        spec.tensor_types["blk." + std::to_string(l) + "." + t + ".weight"] = 8;  // Q8_0
      }
    }
    spec.tensor_types["token_embd.weight"] = 8;
    if (!tied) spec.tensor_types["output.weight"] = 8;
    auto model = load(spec, tied ? "prop_q8_tied" : "prop_q8");
    ASSERT_TRUE(model);
    ASSERT_EQ(model->config().tied_output, tied);
    const auto ids = some_tokens(23);
    Capture whole = run(model, ids, SessionOptions{.n_threads = 1, .n_batch = 64, .q_chunk = 64});
    Capture batched = run(model, ids, SessionOptions{.n_threads = 2, .n_batch = 5, .q_chunk = 3});
    Capture one_by_one = run(model, ids, SessionOptions{.n_threads = 3}, /*step=*/1);
    ASSERT_FALSE(whole.last_logits.empty());
    for (float z : whole.last_logits) ASSERT_TRUE(std::isfinite(z));
    for (const Capture* other : {&batched, &one_by_one}) {
      for (int32_t l = 0; l < 2; ++l) {
        for (int32_t h = 0; h < 4; ++h) {
          for (int32_t i = 0; i < 23; ++i) {
            for (int32_t j = 0; j <= i; ++j) ASSERT_EQ(other->attn->at(l, h, i, j), whole.attn->at(l, h, i, j));
          }
        }
      }
      ASSERT_EQ(other->last_logits, whole.last_logits);
    }
  }
}

// BF16 weights multiply bf16-rounded activations (vdpbf16ps where the CPU has AVX-512
// BF16): the same bits for any batching and threads, and close to the exact f32 path
// (--f32-activations), which rounds nothing.
TEST(AttentionProperties, Bf16WeightsWithBf16ActivationsAreBatchInvariantAndCloseToF32) {
  TinyModelSpec spec;
  spec.own_output = true;
  spec.weight_scale = 0.2f;  // softer attention than the default's near one-hot rows
  for (int l = 0; l < spec.n_layers; ++l) {
    for (const char* t : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
      spec.tensor_types["blk." + std::to_string(l) + "." + t + ".weight"] = 30;  // BF16
    }
  }
  spec.tensor_types["output.weight"] = 30;
  auto model = load(spec, "prop_bf16");
  ASSERT_TRUE(model);
  const auto ids = some_tokens(23);
  Capture whole = run(model, ids, SessionOptions{.n_threads = 1, .n_batch = 64, .q_chunk = 64});
  Capture batched = run(model, ids, SessionOptions{.n_threads = 2, .n_batch = 5, .q_chunk = 3});
  Capture one_by_one = run(model, ids, SessionOptions{.n_threads = 3}, /*step=*/1);
  Capture exact = run(model, ids, SessionOptions{.n_threads = 2, .activations = Activations::kF32});
  for (float z : whole.last_logits) ASSERT_TRUE(std::isfinite(z));
  double max_diff = 0;
  for (int32_t l = 0; l < 2; ++l) {
    for (int32_t h = 0; h < 4; ++h) {
      for (int32_t i = 0; i < 23; ++i) {
        for (int32_t j = 0; j <= i; ++j) {
          const float p = whole.attn->at(l, h, i, j);
          ASSERT_EQ(batched.attn->at(l, h, i, j), p);
          ASSERT_EQ(one_by_one.attn->at(l, h, i, j), p);
          max_diff = std::max(max_diff, std::fabs(double{p} - exact.attn->at(l, h, i, j)));
        }
      }
    }
  }
  ASSERT_EQ(batched.last_logits, whole.last_logits);
  ASSERT_EQ(one_by_one.last_logits, whole.last_logits);
  // bf16 keeps 8 significant bits (relative rounding error <= 2^-9 per activation).
  EXPECT_GT(max_diff, 0.0) << "the int8 session did not round the activations";
  EXPECT_LT(max_diff, 1e-2);
  std::cout << "bf16 activations vs f32: attention max abs " << max_diff << "\n";
  double logit_diff = 0, logit_mag = 0;
  for (size_t i = 0; i < whole.last_logits.size(); ++i) {
    logit_diff = std::max(logit_diff, std::fabs(double{whole.last_logits[i]} - exact.last_logits[i]));
    logit_mag = std::max(logit_mag, std::fabs(double{exact.last_logits[i]}));
  }
  EXPECT_LT(logit_diff, 2e-2 * logit_mag);
}

}  // namespace
}  // namespace attnscope
