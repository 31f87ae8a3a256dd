// attnscope-convert-demo: turns the demo model trained by tools/train-demo-model/train.py
// (weights in a safetensors file, SentencePiece vocabulary as JSON) into a GGUF file with
// the metadata llama.cpp's converter writes for a llama model, so attnscope loads it like
// any downloaded model. Deterministic: the same inputs give the same bytes.
//
//   attnscope-convert-demo --weights weights.safetensors --vocab vocab.json -o demo.gguf
//
// The weights use GGUF tensor names already (token_embd.weight, blk.N.attn_q.weight, ...)
// and PyTorch's [out, in] layout, which is GGUF's ne = {in, out}. The model was trained
// with RoPE on adjacent pairs (ggml's NORM mode, the layout GGUF llama files use), so q/k
// rows are stored as trained: no permutation.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/gguf_writer.h"
#include "attnscope/quant.h"
#include "attnscope/safetensors.h"

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::cerr << "attnscope-convert-demo: error: " << msg << "\n";
  std::exit(1);
}

uint32_t meta_u32(const attnscope::safetensors::File& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) die(f.source() + ": metadata key '" + key + "' missing");
  return static_cast<uint32_t>(std::stoul(it->second));
}

float meta_f32(const attnscope::safetensors::File& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) die(f.source() + ": metadata key '" + key + "' missing");
  return std::stof(it->second);
}

}  // namespace

int main(int argc, char** argv) {
  std::string weights_path, vocab_path, out, ftype = "F16", name = "attnscope-demo";
  CLI::App app{"Convert the demo model (safetensors + SentencePiece vocabulary JSON) to GGUF.\n\n"
               "example:\n  attnscope-convert-demo --weights weights.safetensors --vocab vocab.json "
               "-o models/attnscope-demo-kjv-f16.gguf",
               "attnscope-convert-demo"};
  app.add_option("--weights", weights_path, "safetensors file written by train.py")->required();
  app.add_option("--vocab", vocab_path, "vocab.json written by train.py")->required();
  app.add_option("--type", ftype, "Type of the 2-D weights: F16 or F32 (norms stay F32)")
      ->check(CLI::IsMember({"F16", "F32"}));
  app.add_option("--name", name, "general.name");
  app.add_option("-o,--output", out, "Output GGUF file")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "attnscope-convert-demo: error: " << e.what() << "\n";
    return 2;
  }

  auto file = attnscope::safetensors::File::open(weights_path);
  if (!file.ok()) die(file.error().message);
  const auto& st = *file;

  nlohmann::json vocab;
  {
    std::ifstream in(vocab_path);
    if (!in) die(vocab_path + ": cannot open");
    try {
      in >> vocab;
    } catch (const std::exception& e) {
      die(vocab_path + ": " + e.what());
    }
  }
  const auto pieces = vocab.at("pieces").get<std::vector<std::string>>();
  const auto scores = vocab.at("scores").get<std::vector<float>>();
  const auto types = vocab.at("types").get<std::vector<int32_t>>();
  if (scores.size() != pieces.size() || types.size() != pieces.size())
    die(vocab_path + ": pieces, scores and types differ in length");

  const uint32_t n_layers = meta_u32(st, "n_layers"), n_heads = meta_u32(st, "n_heads"),
                 dim = meta_u32(st, "dim"), ffn = meta_u32(st, "ffn_dim"), ctx = meta_u32(st, "ctx"),
                 n_vocab = meta_u32(st, "vocab_size");
  if (n_vocab != pieces.size())
    die(fmt::format("vocab_size {} in {} but {} pieces in {}", n_vocab, weights_path, pieces.size(), vocab_path));
  if (n_heads == 0 || dim % n_heads != 0) die("dim is not a multiple of n_heads");

  attnscope::gguf::Writer w;
  // The keys and order of llama.cpp's convert_hf_to_gguf.py for a llama model.
  // No general.license: the repository has not chosen one yet (models/README.md).
  w.add_string("general.architecture", "llama");
  w.add_string("general.type", "model");
  w.add_string("general.name", name);
  w.add_uint32("llama.block_count", n_layers);
  w.add_uint32("llama.context_length", ctx);
  w.add_uint32("llama.embedding_length", dim);
  w.add_uint32("llama.feed_forward_length", ffn);
  w.add_uint32("llama.attention.head_count", n_heads);
  w.add_uint32("llama.attention.head_count_kv", n_heads);
  w.add_float32("llama.rope.freq_base", meta_f32(st, "rope_theta"));
  w.add_float32("llama.attention.layer_norm_rms_epsilon", meta_f32(st, "norm_eps"));
  w.add_uint32("general.file_type", ftype == "F16" ? 1u : 0u);
  w.add_uint32("llama.vocab_size", n_vocab);
  w.add_uint32("llama.rope.dimension_count", dim / n_heads);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string("tokenizer.ggml.pre", "default");
  w.add_array("tokenizer.ggml.tokens", std::span<const std::string>(pieces));
  w.add_array("tokenizer.ggml.scores", std::span<const float>(scores));
  w.add_array("tokenizer.ggml.token_type", std::span<const int32_t>(types));
  w.add_uint32("tokenizer.ggml.bos_token_id", vocab.at("bos_id").get<uint32_t>());
  w.add_uint32("tokenizer.ggml.eos_token_id", vocab.at("eos_id").get<uint32_t>());
  w.add_uint32("tokenizer.ggml.unknown_token_id", vocab.at("unk_id").get<uint32_t>());
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_bool("tokenizer.ggml.add_eos_token", false);
  w.add_bool("tokenizer.ggml.add_space_prefix", vocab.at("add_space_prefix").get<bool>());
  w.add_uint32("general.quantization_version", 2);

  std::vector<std::string> names = {"token_embd.weight"};
  for (uint32_t l = 0; l < n_layers; ++l) {
    for (const char* t : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                          "ffn_up", "ffn_down"})
      names.push_back(fmt::format("blk.{}.{}.weight", l, t));
  }
  names.push_back("output_norm.weight");  // tied embeddings: no output.weight

  std::vector<std::vector<uint8_t>> storage;  // alive until w.write()
  storage.reserve(names.size());
  for (const auto& n : names) {
    const auto* t = st.find(n);
    if (!t) die(weights_path + ": tensor '" + n + "' missing");
    auto f32 = st.read_f32(n);
    if (!f32.ok()) die(f32.error().message);
    std::vector<uint64_t> ne(t->shape.rbegin(), t->shape.rend());  // numpy order -> ggml order
    const bool matrix = ne.size() == 2;
    const uint32_t type = matrix && ftype == "F16" ? static_cast<uint32_t>(attnscope::GgmlType::F16)
                                                   : static_cast<uint32_t>(attnscope::GgmlType::F32);
    std::vector<uint8_t> data;
    if (type == static_cast<uint32_t>(attnscope::GgmlType::F16)) {
      data.resize(f32->size() * 2);
      for (size_t i = 0; i < f32->size(); ++i) {
        const uint16_t h = attnscope::quant::f32_to_f16((*f32)[i]);
        std::memcpy(data.data() + 2 * i, &h, 2);
      }
    } else {
      data.resize(f32->size() * 4);
      std::memcpy(data.data(), f32->data(), data.size());
    }
    storage.push_back(std::move(data));
    w.add_tensor(n, type, ne, storage.back());
  }
  if (auto s = w.write(out); !s.ok()) die(s.error().message);
  std::cerr << fmt::format("{}: llama, {} layers, {} heads, width {}, vocab {}, {}\n", out, n_layers, n_heads, dim,
                           n_vocab, ftype);
  return 0;
}
