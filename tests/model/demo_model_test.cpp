// The committed demo model (models/attnscope-demo-kjv-f16.gguf, trained by
// tools/train-demo-model/train.py) loads like a downloaded model and shows the
// attention heads the model card promises: a previous-token head and an induction head,
// computed from the captured attention; it writes KJV-like text; and its logits match
// the PyTorch model it was converted from (models/demo-reference.safetensors).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "attnscope/model.h"
#include "attnscope/safetensors.h"
#include "attnscope/session.h"
#include "support/attention_collector.h"

namespace attnscope {
namespace {

using testing::AttentionCollector;

std::filesystem::path source_root() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

std::shared_ptr<const Model> demo_model() {
  static std::shared_ptr<const Model> model = [] {
    const auto path = source_root() / "models" / "attnscope-demo-kjv-f16.gguf";
    auto m = Model::load(path.string());
    EXPECT_TRUE(m.ok()) << path << ": " << (m.ok() ? "" : m.error().message);
    return m.ok() ? *m : nullptr;
  }();
  return model;
}

std::unique_ptr<AttentionCollector> capture(const std::shared_ptr<const Model>& model,
                                            const std::vector<int32_t>& ids, std::vector<float>* logits = nullptr) {
  const ModelConfig& c = model->config();
  auto attn = std::make_unique<AttentionCollector>(c.n_layers, c.n_heads, static_cast<int32_t>(ids.size()));
  auto session = Session::create(model, SessionOptions{.n_threads = 2});
  EXPECT_TRUE(session.ok());
  auto st = (*session)->eval(ids, attn.get());
  EXPECT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(attn->malformed(), 0);
  if (logits) {
    auto last = (*session)->last_logits();
    logits->assign(last.begin(), last.end());
  }
  return attn;
}

// Best head by `score(layer, head)`; returns {score, layer, head}.
template <class F>
std::tuple<double, int32_t, int32_t> best_head(const ModelConfig& c, F score) {
  std::tuple<double, int32_t, int32_t> best{-1.0, -1, -1};
  for (int32_t l = 0; l < c.n_layers; ++l) {
    for (int32_t h = 0; h < c.n_heads; ++h) {
      const double s = score(l, h);
      if (s > std::get<0>(best)) best = {s, l, h};
    }
  }
  return best;
}

TEST(DemoModel, LoadsAsLlamaWithSentencePieceVocabulary) {
  auto model = demo_model();
  ASSERT_TRUE(model);
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.rope_layout, RopeLayout::kNorm);
  EXPECT_EQ(c.n_vocab, 2048);
  const auto ids = model->tokenizer().encode("In the beginning God created the heaven", true, false);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], model->tokenizer().bos_id());
  EXPECT_EQ(model->tokenizer().decode(std::span<const int32_t>(ids).subspan(1)),
            "In the beginning God created the heaven");
}

TEST(DemoModel, HasAPreviousTokenHead) {
  auto model = demo_model();
  ASSERT_TRUE(model);
  const auto ids = model->tokenizer().encode(
      "And it came to pass, when the king had heard the words of the book of the law, that he rent his "
      "clothes, and commanded the priests and the scribes to go up unto the house of the LORD.",
      true, false);
  const int32_t T = static_cast<int32_t>(ids.size());
  auto attn = capture(model, ids);
  auto [score, layer, head] = best_head(model->config(), [&](int32_t l, int32_t h) {
    double sum = 0;
    for (int32_t i = 1; i < T; ++i) sum += attn->at(l, h, i, i - 1);
    return sum / (T - 1);
  });
  std::cout << "previous-token head: layer " << layer << " head " << head << ", mean attention on i-1 = " << score
            << " over " << T - 1 << " rows\n";
  EXPECT_GT(score, 0.5);
}

TEST(DemoModel, HasAnInductionHead) {
  auto model = demo_model();
  ASSERT_TRUE(model);
  // A random sequence of ordinary pieces r_0..r_{n-1}, then the same sequence again.
  const int32_t n = 40, first_normal = 259, n_vocab = model->config().n_vocab;
  std::vector<int32_t> r;
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (int32_t i = 0; i < n; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    r.push_back(first_normal + static_cast<int32_t>((state >> 33) % static_cast<uint64_t>(n_vocab - first_normal)));
  }
  std::vector<int32_t> ids = {model->tokenizer().bos_id()};
  ids.insert(ids.end(), r.begin(), r.end());
  ids.insert(ids.end(), r.begin(), r.end());
  auto attn = capture(model, ids);
  // r_j sits at 1 + j (first copy) and 1 + n + j (second copy). An induction head attends
  // from r_j's second occurrence to the token after its first one: 1 + j + 1.
  auto [score, layer, head] = best_head(model->config(), [&](int32_t l, int32_t h) {
    double sum = 0;
    for (int32_t j = 0; j + 1 < n; ++j) sum += attn->at(l, h, 1 + n + j, 2 + j);
    return sum / (n - 1);
  });
  std::cout << "induction head: layer " << layer << " head " << head << ", mean attention on the token after "
            << "the previous occurrence = " << score << " (uniform would be about " << 1.0 / (1.5 * n) << ")\n";
  EXPECT_GT(score, 0.3);
}

TEST(DemoModel, GreedyTextLooksLikeTheCorpus) {
  auto model = demo_model();
  ASSERT_TRUE(model);
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> ids = tok.encode("And the LORD said unto Moses,", true, false);
  const size_t n_prompt = ids.size();
  auto session = Session::create(model, SessionOptions{.n_threads = 2});
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE((*session)->eval(ids).ok());
  for (int i = 0; i < 32; ++i) {
    auto logits = (*session)->last_logits();
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next == tok.eos_id()) break;
    ids.push_back(next);
    ASSERT_TRUE((*session)->eval(std::span<const int32_t>(&ids.back(), 1)).ok());
  }
  const std::string text = tok.decode(std::span<const int32_t>(ids).subspan(n_prompt));
  std::cout << "greedy continuation: \"" << text << "\"\n";
  int common = 0;
  for (const char* w : {" the ", " and ", " of ", " unto ", " LORD", " shall ", " thou", " thee", " I "}) {
    if (text.find(w) != std::string::npos) ++common;
  }
  EXPECT_GE(common, 3) << text;
}

TEST(DemoModel, MatchesThePyTorchReference) {
  auto model = demo_model();
  ASSERT_TRUE(model);
  const auto path = source_root() / "models" / "demo-reference.safetensors";
  auto ref = safetensors::File::open(path.string());
  ASSERT_TRUE(ref.ok()) << path << ": " << (ref.ok() ? "" : ref.error().message)
                        << " (written by tools/train-demo-model/train.py selftest)";
  const std::string prompt = ref->metadata().at("prompt");
  auto want_ids = ref->read_i32("prompt_tokens");
  auto want_logits = ref->read_f32("last_logits");
  auto want_attn = ref->read_f32("attention");  // (n_layers, n_heads, T, T)
  ASSERT_TRUE(want_ids.ok() && want_logits.ok() && want_attn.ok());
  const auto ids = model->tokenizer().encode(prompt, true, false);
  ASSERT_EQ(ids, *want_ids);
  std::vector<float> logits;
  auto attn = capture(model, ids, &logits);
  ASSERT_EQ(logits.size(), want_logits->size());
  double max_logit = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    max_logit = std::max(max_logit, std::fabs(double{logits[i]} - double{(*want_logits)[i]}));
  }
  const ModelConfig& c = model->config();
  const auto T = static_cast<int32_t>(ids.size());
  ASSERT_EQ(want_attn->size(), static_cast<size_t>(c.n_layers) * c.n_heads * T * T);
  double max_attn = 0;
  for (int32_t l = 0; l < c.n_layers; ++l) {
    for (int32_t h = 0; h < c.n_heads; ++h) {
      for (int32_t i = 0; i < T; ++i) {
        for (int32_t j = 0; j <= i; ++j) {
          const float want = (*want_attn)[((static_cast<size_t>(l) * c.n_heads + h) * T + i) * T + j];
          max_attn = std::max(max_attn, std::fabs(double{attn->at(l, h, i, j)} - double{want}));
        }
      }
    }
  }
  std::cout << "against PyTorch: max |logit difference| = " << max_logit
            << ", max |attention difference| = " << max_attn << " (" << T << " tokens)\n";
  EXPECT_LT(max_logit, 1e-3);
  EXPECT_LT(max_attn, 1e-4);
}

}  // namespace
}  // namespace attnscope
