// attnscope-synth-model: writes a random-weight GGUF model with the exact shapes of a
// real model, for benchmarks (speed, memory and store size depend on shapes, not on
// weight values). The tokenizer is a byte-level BPE vocabulary of the right size whose
// only usable tokens are the 256 bytes; pass --token-ids to benchmarks, or any text.
//
//   attnscope-synth-model --shape llama-3.2-1b --type Q4_K_M -o /tmp/llama-3.2-1b-q4km.gguf
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/gguf_writer.h"
#include "attnscope/quant.h"
#include "tokenizer/bpe.h"

namespace {

struct Shape {
  const char* arch;
  int n_layers, n_embd, n_heads, n_kv_heads, head_dim, n_ff, n_vocab, n_ctx;
  float rope_theta;
  bool tied;
  bool qkv_bias;
  bool qk_norm;
};

const std::map<std::string, Shape> kShapes = {
    {"qwen2.5-0.5b", {"qwen2", 24, 896, 14, 2, 64, 4864, 151936, 32768, 1e6f, true, true, false}},
    {"qwen2.5-1.5b", {"qwen2", 28, 1536, 12, 2, 128, 8960, 151936, 32768, 1e6f, true, true, false}},
    {"qwen3-0.6b", {"qwen3", 28, 1024, 16, 8, 128, 3072, 151936, 40960, 1e6f, true, false, true}},
    {"llama-3.2-1b", {"llama", 16, 2048, 32, 8, 64, 8192, 128256, 131072, 5e5f, true, false, false}},
    {"llama-3.2-3b", {"llama", 28, 3072, 24, 8, 128, 8192, 128256, 131072, 5e5f, true, false, false}},
    {"llama-3-8b", {"llama", 32, 4096, 32, 8, 128, 14336, 128256, 8192, 5e5f, false, false, false}},
    {"tinyllama-1.1b", {"llama", 22, 2048, 32, 4, 64, 5632, 32000, 2048, 1e4f, false, false, false}},
};

// ggml type of each tensor for a file type; *_M mixes follow llama.cpp's broad recipe
// (attn_v, ffn_down and the output one notch higher).
uint32_t tensor_type(const std::string& ftype, const std::string& name) {
  auto id = [](attnscope::GgmlType t) { return static_cast<uint32_t>(t); };
  const bool sensitive = name.find("attn_v") != std::string::npos ||
                         name.find("ffn_down") != std::string::npos || name == "output.weight";
  if (ftype == "F32") return id(attnscope::GgmlType::F32);
  if (ftype == "F16") return id(attnscope::GgmlType::F16);
  if (ftype == "BF16") return id(attnscope::GgmlType::BF16);
  if (ftype == "Q8_0") return id(attnscope::GgmlType::Q8_0);
  if (ftype == "Q4_0") return id(attnscope::GgmlType::Q4_0);
  if (ftype == "Q4_K_M") return id(sensitive ? attnscope::GgmlType::Q6_K : attnscope::GgmlType::Q4_K);
  if (ftype == "Q5_K_M") return id(sensitive ? attnscope::GgmlType::Q6_K : attnscope::GgmlType::Q5_K);
  if (ftype == "Q6_K") return id(attnscope::GgmlType::Q6_K);
  return id(attnscope::GgmlType::F32);
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape_name, ftype = "Q8_0", out;
  uint64_t seed = 1;
  int n_layers_override = 0;
  std::string shapes_list;
  for (const auto& [k, v] : kShapes) shapes_list += (shapes_list.empty() ? "" : ", ") + k;
  CLI::App app{"Write a random-weight GGUF model with a real model's shapes (for benchmarks).\n\n"
               "examples:\n  attnscope-synth-model --shape qwen2.5-0.5b --type Q8_0 -o /tmp/qwen-0.5b.gguf\n"
               "  attnscope-synth-model --shape llama-3-8b --type Q4_K_M -o /tmp/llama3-8b.gguf",
               "attnscope-synth-model"};
  app.add_option("--shape", shape_name, "One of: " + shapes_list)->required();
  app.add_option("--type", ftype, "F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K")
      ->check(CLI::IsMember({"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"}));
  app.add_option("-o,--output", out, "Output GGUF file")->required();
  app.add_option("--seed", seed, "Random seed");
  app.add_option("--layers", n_layers_override, "Use this many layers instead of the shape's");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "attnscope-synth-model: error: " << e.what() << "\n";
    return 2;
  }
  auto it = kShapes.find(shape_name);
  if (it == kShapes.end()) {
    std::cerr << "attnscope-synth-model: error: unknown shape '" << shape_name << "' (known: " << shapes_list << ")\n";
    return 2;
  }
  Shape s = it->second;
  if (n_layers_override > 0) s.n_layers = n_layers_override;
  const std::string a = std::string(s.arch) + ".";

  attnscope::gguf::Writer w;
  w.add_string("general.architecture", s.arch);
  w.add_string("general.name", "synthetic " + shape_name + " " + ftype);
  w.add_uint32(a + "block_count", static_cast<uint32_t>(s.n_layers));
  w.add_uint32(a + "embedding_length", static_cast<uint32_t>(s.n_embd));
  w.add_uint32(a + "feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.add_uint32(a + "attention.head_count", static_cast<uint32_t>(s.n_heads));
  w.add_uint32(a + "attention.head_count_kv", static_cast<uint32_t>(s.n_kv_heads));
  w.add_uint32(a + "attention.key_length", static_cast<uint32_t>(s.head_dim));
  w.add_uint32(a + "attention.value_length", static_cast<uint32_t>(s.head_dim));
  w.add_uint32(a + "context_length", static_cast<uint32_t>(s.n_ctx));
  w.add_float32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
  w.add_float32(a + "rope.freq_base", s.rope_theta);

  // Byte-level BPE vocabulary: the 256 byte tokens, fillers, and an end-of-text token.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(attnscope::tokenizer::bytes_to_unicode(std::string(1, static_cast<char>(b))));
    types.push_back(1);
  }
  while (static_cast<int>(tokens.size()) < s.n_vocab - 1) {
    tokens.push_back(fmt::format("<filler_{}>", tokens.size()));
    types.push_back(5);  // unused
  }
  tokens.push_back("<|endoftext|>");
  types.push_back(3);
  const std::vector<std::string> merges;
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "qwen2");
  w.add_array("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
  w.add_array("tokenizer.ggml.token_type", std::span<const int32_t>(types));
  w.add_array("tokenizer.ggml.merges", std::span<const std::string>(merges));
  w.add_uint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(s.n_vocab - 1));
  w.add_uint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(s.n_vocab - 1));
  w.add_bool("tokenizer.ggml.add_bos_token", false);

  struct Plan {
    std::string name;
    std::vector<uint64_t> ne;
    bool norm;
  };
  const uint64_t e = static_cast<uint64_t>(s.n_embd), q = static_cast<uint64_t>(s.n_heads * s.head_dim),
                 kv = static_cast<uint64_t>(s.n_kv_heads * s.head_dim), ff = static_cast<uint64_t>(s.n_ff);
  std::vector<Plan> plan = {{"token_embd.weight", {e, static_cast<uint64_t>(s.n_vocab)}, false},
                            {"output_norm.weight", {e}, true}};
  if (!s.tied) plan.push_back({"output.weight", {e, static_cast<uint64_t>(s.n_vocab)}, false});
  for (int l = 0; l < s.n_layers; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    plan.push_back({b + "attn_norm.weight", {e}, true});
    plan.push_back({b + "attn_q.weight", {e, q}, false});
    plan.push_back({b + "attn_k.weight", {e, kv}, false});
    plan.push_back({b + "attn_v.weight", {e, kv}, false});
    plan.push_back({b + "attn_output.weight", {q, e}, false});
    if (s.qkv_bias) {
      plan.push_back({b + "attn_q.bias", {q}, true});
      plan.push_back({b + "attn_k.bias", {kv}, true});
      plan.push_back({b + "attn_v.bias", {kv}, true});
    }
    if (s.qk_norm) {
      plan.push_back({b + "attn_q_norm.weight", {static_cast<uint64_t>(s.head_dim)}, true});
      plan.push_back({b + "attn_k_norm.weight", {static_cast<uint64_t>(s.head_dim)}, true});
    }
    plan.push_back({b + "ffn_norm.weight", {e}, true});
    plan.push_back({b + "ffn_gate.weight", {e, ff}, false});
    plan.push_back({b + "ffn_up.weight", {e, ff}, false});
    plan.push_back({b + "ffn_down.weight", {ff, e}, false});
  }

  std::vector<std::vector<uint8_t>> storage;  // tensor bytes, alive until the write
  uint64_t total = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const Plan& p = plan[i];
    const uint32_t type = p.norm ? 0u : tensor_type(ftype, p.name);
    auto bytes = attnscope::ggml_tensor_bytes(type, p.ne);
    if (!bytes.ok()) {
      std::cerr << "attnscope-synth-model: error: " << p.name << ": " << bytes.error().message << "\n";
      return 1;
    }
    std::vector<uint8_t> data(*bytes);
    uint64_t n = 1;
    for (uint64_t d : p.ne) n *= d;
    // Norm weights near 1 keep activations in range; matrices ~ N(0, 1/sqrt(fan_in)).
    const float scale = p.norm ? 0.0f : 1.0f / std::sqrt(static_cast<float>(p.ne[0]));
    auto st = attnscope::quant::fill_random(type, data.data(), static_cast<int64_t>(n), seed + i, scale);
    if (!st.ok()) {
      std::cerr << "attnscope-synth-model: error: " << p.name << ": " << st.error().message << "\n";
      return 1;
    }
    if (p.norm && p.name.find("bias") == std::string::npos) {
      for (uint64_t j = 0; j < n; ++j) {
        const float one = 1.0f;
        std::memcpy(data.data() + 4 * j, &one, 4);
      }
    }
    total += data.size();
    storage.push_back(std::move(data));
    w.add_tensor(p.name, type, p.ne, storage.back());
  }
  auto st = w.write(out);
  if (!st.ok()) {
    std::cerr << "attnscope-synth-model: error: " << st.error().message << "\n";
    return 1;
  }
  std::cerr << fmt::format("{}: {} ({}), {} layers, {:.2f} GB of weights\n", out, shape_name, ftype,
                           s.n_layers, total / 1e9);
  return 0;
}
