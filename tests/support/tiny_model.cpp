#include "support/tiny_model.h"

#include <filesystem>
#include <fstream>
#include <cstring>
#include <random>

#include "attnscope/ggml_type.h"
#include "attnscope/gguf_writer.h"
#include "attnscope/quant.h"

namespace attnscope::testing {
namespace {

struct TensorPlan {
  std::string name;
  std::vector<uint64_t> ne;
  bool is_norm;
};

std::vector<TensorPlan> plan(const TinyModelSpec& s) {
  const uint64_t e = static_cast<uint64_t>(s.n_embd);
  const uint64_t hd = e / static_cast<uint64_t>(s.n_heads);
  const uint64_t q = hd * static_cast<uint64_t>(s.n_heads), kv = hd * static_cast<uint64_t>(s.n_kv_heads);
  const uint64_t ff = static_cast<uint64_t>(s.n_ff);
  std::vector<TensorPlan> t = {{"token_embd.weight", {e, kTinyVocab}, false},
                               {"output_norm.weight", {e}, true}};
  for (int32_t l = 0; l < s.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    t.push_back({b + "attn_norm.weight", {e}, true});
    t.push_back({b + "attn_q.weight", {e, q}, false});
    t.push_back({b + "attn_k.weight", {e, kv}, false});
    t.push_back({b + "attn_v.weight", {e, kv}, false});
    t.push_back({b + "attn_output.weight", {q, e}, false});
    if (s.arch == "qwen2") {
      t.push_back({b + "attn_q.bias", {q}, false});
      t.push_back({b + "attn_k.bias", {kv}, false});
      t.push_back({b + "attn_v.bias", {kv}, false});
    }
    if (s.arch == "qwen3") {
      t.push_back({b + "attn_q_norm.weight", {hd}, true});
      t.push_back({b + "attn_k_norm.weight", {hd}, true});
    }
    t.push_back({b + "ffn_norm.weight", {e}, true});
    t.push_back({b + "ffn_gate.weight", {e, ff}, false});
    t.push_back({b + "ffn_up.weight", {e, ff}, false});
    t.push_back({b + "ffn_down.weight", {ff, e}, false});
  }
  if (s.own_output) t.push_back({"output.weight", {e, kTinyVocab}, false});
  return t;
}

}  // namespace

Result<std::vector<uint8_t>> build_tiny_model(const TinyModelSpec& s) {
  gguf::Writer w;
  const std::string a = s.arch + ".";
  auto kv_u32 = [&](const std::string& key, uint32_t v) {
    if (!s.omit_keys.count(key)) w.add_uint32(key, v);
  };
  auto kv_f32 = [&](const std::string& key, float v) {
    if (!s.omit_keys.count(key)) w.add_float32(key, v);
  };
  if (!s.omit_keys.count("general.architecture")) w.add_string("general.architecture", s.arch);
  w.add_string("general.name", "tiny-" + s.arch);
  kv_u32(a + "block_count", static_cast<uint32_t>(s.n_layers));
  kv_u32(a + "embedding_length", static_cast<uint32_t>(s.n_embd));
  kv_u32(a + "feed_forward_length", static_cast<uint32_t>(s.n_ff));
  kv_u32(a + "attention.head_count", static_cast<uint32_t>(s.n_heads));
  kv_u32(a + "attention.head_count_kv", static_cast<uint32_t>(s.n_kv_heads));
  kv_u32(a + "context_length", static_cast<uint32_t>(s.n_ctx));
  kv_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  kv_f32(a + "rope.freq_base", 10000.0f);
  if (s.sliding_window > 0) kv_u32(a + "attention.sliding_window", static_cast<uint32_t>(s.sliding_window));
  if (s.attn_softcap > 0) kv_f32(a + "attn_logit_softcapping", s.attn_softcap);

  // SentencePiece vocabulary with byte fallback.
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    scores.push_back(0);
    types.push_back(6);
  }
  tokens.push_back("\xE2\x96\x81");
  scores.push_back(-1);
  types.push_back(1);
  for (char c = 'a'; c <= 'z'; ++c) {
    tokens.emplace_back(1, c);
    scores.push_back(-2.0f - static_cast<float>(c - 'a'));
    types.push_back(1);
  }
  if (!s.omit_keys.count("tokenizer.ggml.model")) w.add_string("tokenizer.ggml.model", "llama");
  if (!s.omit_keys.count("tokenizer.ggml.tokens")) w.add_array("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
  w.add_array("tokenizer.ggml.scores", std::span<const float>(scores));
  w.add_array("tokenizer.ggml.token_type", std::span<const int32_t>(types));
  w.add_uint32("tokenizer.ggml.bos_token_id", 1);
  w.add_uint32("tokenizer.ggml.eos_token_id", 2);
  w.add_uint32("tokenizer.ggml.unknown_token_id", 0);

  std::mt19937_64 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, s.weight_scale);
  std::vector<std::vector<uint8_t>> storage;  // keeps tensor bytes alive until serialize()
  for (TensorPlan t : plan(s)) {
    if (s.omit_tensors.count(t.name)) continue;
    if (auto it = s.tensor_shapes.find(t.name); it != s.tensor_shapes.end()) t.ne = it->second;
    uint32_t type = 0;
    if (auto it = s.tensor_types.find(t.name); it != s.tensor_types.end()) type = it->second;
    ATTN_ASSIGN_OR_RETURN(uint64_t bytes, ggml_tensor_bytes(type, t.ne));
    std::vector<uint8_t> data(bytes);
    if (type == 0) {
      for (size_t i = 0; i < bytes / 4; ++i) {
        const float v = t.is_norm ? 1.0f + 0.1f * normal(rng) : normal(rng);
        std::memcpy(data.data() + i * 4, &v, 4);
      }
    } else if (type == 30) {  // BF16: the same distribution, rounded
      for (size_t i = 0; i < bytes / 2; ++i) {
        const uint16_t v = quant::f32_to_bf16(t.is_norm ? 1.0f + 0.1f * normal(rng) : normal(rng));
        std::memcpy(data.data() + i * 2, &v, 2);
      }
    } else {
      for (auto& byte : data) byte = static_cast<uint8_t>(rng());
      if (type == 8) {  // Q8_0: every block's f16 scale 2^-6 (0x2400), so the model computes
        for (size_t b = 0; b + 34 <= bytes; b += 34) {  // finite values (|w| <= 2)
          data[b] = 0x00;
          data[b + 1] = 0x24;
        }
      }
    }
    storage.push_back(std::move(data));
    w.add_tensor(t.name, type, t.ne, storage.back());
  }
  return w.serialize();
}

Result<std::string> write_tiny_model(const TinyModelSpec& spec, const std::string& name) {
  ATTN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, build_tiny_model(spec));
  const auto dir = std::filesystem::temp_directory_path() / "attnscope-tests";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / (name + ".gguf")).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) return make_error("cannot write {}", path);
  return path;
}

}  // namespace attnscope::testing
