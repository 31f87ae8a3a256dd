// Loading errors: each names the file, key or tensor, and says expected vs actual.
#include <gtest/gtest.h>

#include <cmath>

#include "attnscope/generate.h"
#include "attnscope/model.h"
#include "attnscope/session.h"
#include "support/tiny_model.h"

namespace attnscope {
namespace {

using testing::TinyModelSpec;
using testing::write_tiny_model;

// Loads a tiny model built from `spec`; returns the error message ("" on success).
std::string load_error(const TinyModelSpec& spec, const std::string& name) {
  auto path = write_tiny_model(spec, name);
  if (!path.ok()) return "BUILD FAILED: " + path.error().message;
  auto model = Model::load(*path);
  return model.ok() ? "" : model.error().message;
}

TEST(ModelLoad, ReadsTheHyperParameters) {
  TinyModelSpec spec;
  spec.sliding_window = 5;
  auto path = write_tiny_model(spec, "load_ok");
  ASSERT_TRUE(path.ok()) << path.error().message;
  auto model = Model::load(*path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const ModelConfig& c = (*model)->config();
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_embd, 32);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.n_rot, 8);
  EXPECT_EQ(c.n_ff, 48);
  EXPECT_EQ(c.n_vocab, testing::kTinyVocab);
  EXPECT_EQ(c.n_ctx_train, 64);
  EXPECT_EQ(c.sliding_window, 5);
  EXPECT_TRUE(c.tied_output);
  EXPECT_EQ(c.rope_layout, RopeLayout::kNorm);
  EXPECT_FLOAT_EQ(c.attn_scale, 1.0f / std::sqrt(8.0f));
}

TEST(ModelLoad, MissingMetadataKeyIsNamed) {
  TinyModelSpec spec;
  spec.omit_keys = {"llama.block_count"};
  const std::string err = load_error(spec, "missing_key");
  EXPECT_NE(err.find("llama.block_count"), std::string::npos) << err;
  EXPECT_NE(err.find("missing_key.gguf"), std::string::npos) << "names the file: " << err;
}

TEST(ModelLoad, MissingTensorIsNamed) {
  TinyModelSpec spec;
  spec.omit_tensors = {"blk.1.ffn_up.weight"};
  const std::string err = load_error(spec, "missing_tensor");
  EXPECT_NE(err.find("blk.1.ffn_up.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
}

TEST(ModelLoad, WrongShapeSaysExpectedAndFound) {
  TinyModelSpec spec;
  spec.tensor_shapes = {{"blk.0.attn_q.weight", {32, 16}}};
  const std::string err = load_error(spec, "wrong_shape");
  EXPECT_NE(err.find("blk.0.attn_q.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("expected shape [32, 32]"), std::string::npos) << err;
  EXPECT_NE(err.find("found [32, 16]"), std::string::npos) << err;
}

TEST(ModelLoad, UnsupportedWeightTypeIsNamed) {
  TinyModelSpec spec;
  spec.tensor_types = {{"blk.0.ffn_down.weight", 26 /* I32 */}};
  const std::string err = load_error(spec, "bad_type");
  EXPECT_NE(err.find("blk.0.ffn_down.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("I32"), std::string::npos) << err;
  EXPECT_NE(err.find("Q4_K"), std::string::npos) << "lists the supported types: " << err;
}

TEST(ModelLoad, UnsupportedArchitectureListsTheSupportedOnes) {
  TinyModelSpec spec;
  spec.arch = "gpt2";
  const std::string err = load_error(spec, "bad_arch");
  EXPECT_NE(err.find("'gpt2'"), std::string::npos) << err;
  EXPECT_NE(err.find("llama, qwen2, qwen3"), std::string::npos) << err;
}

TEST(ModelLoad, InconsistentHeadCountsAreRejected) {
  TinyModelSpec spec;
  spec.n_heads = 4;
  spec.n_kv_heads = 3;
  const std::string err = load_error(spec, "bad_heads");
  EXPECT_NE(err.find("head_count"), std::string::npos) << err;
}

TEST(ModelLoad, MissingTokenizerIsNamed) {
  TinyModelSpec spec;
  spec.omit_keys = {"tokenizer.ggml.tokens"};
  const std::string err = load_error(spec, "no_tokens");
  EXPECT_NE(err.find("tokenizer.ggml.tokens"), std::string::npos) << err;
}

TEST(ModelLoad, NotAFile) {
  auto model = Model::load("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.error().message.find("/nonexistent/dir/model.gguf"), std::string::npos);
}

TEST(Session, PromptLongerThanTheContextIsAnError) {
  auto path = write_tiny_model(TinyModelSpec{}, "ctx_check");
  ASSERT_TRUE(path.ok()) << path.error().message;
  auto model = Model::load(*path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto session = Session::create(*model, SessionOptions{.n_threads = 1});
  ASSERT_TRUE(session.ok());
  std::vector<int32_t> prompt(65, 10);  // context is 64
  auto result = generate(**session, prompt, GenerateOptions{});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("65"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("64"), std::string::npos) << result.error().message;
}

TEST(Session, GenerationStopsWhenTheContextIsFull) {
  auto path = write_tiny_model(TinyModelSpec{}, "ctx_full");
  ASSERT_TRUE(path.ok()) << path.error().message;
  auto model = Model::load(*path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto session = Session::create(*model, SessionOptions{.n_ctx = 12, .n_threads = 1});
  ASSERT_TRUE(session.ok());
  std::vector<int32_t> prompt(10, 20);
  GenerateOptions options;
  options.max_new_tokens = 50;
  options.stop_at_end_of_generation = false;
  auto result = generate(**session, prompt, options);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->stop_reason, StopReason::kContextFull);
  EXPECT_EQ((*session)->n_past(), 12);
  EXPECT_EQ(result->generated.size(), 3u);  // two fed back, the third has no room
}

TEST(Session, ReservingTheCacheChangesNoResultAndIsClampedToTheContext) {
  auto path = write_tiny_model(TinyModelSpec{}, "reserve");
  ASSERT_TRUE(path.ok()) << path.error().message;
  auto model = Model::load(*path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < 40; ++i) ids.push_back(3 + (i * 7) % 200);
  std::vector<float> logits[2];
  for (int reserve = 0; reserve < 2; ++reserve) {
    auto session = Session::create(*model, SessionOptions{.n_threads = 2});
    ASSERT_TRUE(session.ok());
    if (reserve) (*session)->reserve(1 << 20);  // far past the context of 64: clamped
    for (size_t i = 0; i < ids.size(); i += 7) {  // cache growing in steps, or reserved once
      const size_t n = std::min<size_t>(7, ids.size() - i);
      ASSERT_TRUE((*session)->eval(std::span<const int32_t>(ids).subspan(i, n)).ok());
    }
    logits[reserve].assign((*session)->last_logits().begin(), (*session)->last_logits().end());
  }
  ASSERT_FALSE(logits[0].empty());
  EXPECT_EQ(logits[0], logits[1]);
}

TEST(Session, TokenOutsideTheVocabularyIsAnError) {
  auto path = write_tiny_model(TinyModelSpec{}, "bad_token");
  ASSERT_TRUE(path.ok()) << path.error().message;
  auto model = Model::load(*path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto session = Session::create(*model, SessionOptions{.n_threads = 1});
  ASSERT_TRUE(session.ok());
  const std::vector<int32_t> ids = {1, testing::kTinyVocab};
  auto status = (*session)->eval(ids);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find(std::to_string(testing::kTinyVocab)), std::string::npos);
}

}  // namespace
}  // namespace attnscope
