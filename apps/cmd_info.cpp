// attnscope info MODEL: what a GGUF file holds and whether attnscope can run it.
#include <filesystem>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "attnscope/ggml_type.h"
#include "attnscope/gguf.h"
#include "attnscope/model.h"
#include "attnscope/quant.h"
#include "attnscope/tokenizer.h"
#include "cli.h"

namespace attnscope::cli {
namespace {

nlohmann::json special_token(const Tokenizer& tok, int32_t id) {
  if (id < 0 || id >= tok.n_vocab()) return nullptr;
  return {{"id", id}, {"text", tok.token_text(id)}};
}

nlohmann::json describe(const gguf::File& file, const std::string& path) {
  nlohmann::json j;
  j["file"] = path;
  j["file_size"] = file.file_size();
  j["gguf_version"] = file.version();
  auto arch = file.get_string_or("general.architecture", "");
  j["architecture"] = arch ? *arch : "";
  auto name = file.get_string_or("general.name", "");
  j["name"] = name ? *name : "";

  std::map<std::string, uint64_t> types;  // type name -> tensor count
  uint64_t n_params = 0;
  for (const auto& t : file.tensors()) {
    ++types[ggml_type_name(t.type)];
    n_params += t.n_elements();
  }
  j["n_tensors"] = file.tensors().size();
  j["n_parameters"] = n_params;
  j["weight_types"] = types;
  j["chat_template"] = file.find("tokenizer.chat_template") != nullptr;

  auto model = Model::load(path);
  j["runnable"] = model.ok();
  if (!model.ok()) {
    j["not_runnable_because"] = model.error().message;
  } else {
    const ModelConfig& c = (*model)->config();
    j["dimensions"] = {
        {"n_layers", c.n_layers},       {"n_embd", c.n_embd},
        {"n_heads", c.n_heads},         {"n_kv_heads", c.n_kv_heads},
        {"head_dim", c.head_dim},       {"n_ff", c.n_ff},
        {"n_vocab", c.n_vocab},         {"context_length", c.n_ctx_train},
        {"rope", c.rope_layout == RopeLayout::kNorm ? "norm (adjacent pairs)" : "neox (halves)"},
        {"rope_theta", c.rope_theta},   {"sliding_window", c.sliding_window},
        {"tied_output", c.tied_output}, {"qkv_bias", c.qkv_bias},
        {"qk_norm", c.qk_norm},         {"llama3_rope_freqs", c.has_rope_freq_factors},
    };
  }
  auto tok = Tokenizer::from_gguf(file);
  if (tok.ok()) {
    j["tokenizer"] = {
        {"model", tok->model()},
        {"pre", tok->pre()},
        {"n_vocab", tok->n_vocab()},
        {"add_bos", tok->add_bos()},
        {"add_eos", tok->add_eos()},
        {"bos", special_token(*tok, tok->bos_id())},
        {"eos", special_token(*tok, tok->eos_id())},
        {"eot", special_token(*tok, tok->eot_id())},
    };
  } else {
    j["tokenizer_error"] = tok.error().message;
  }
  // What this machine will run the model with (ATTNSCOPE_CPU can lower it).
  j["kernels"] = fmt::format("{} (this CPU supports {}{})", quant::isa_name(quant::cpu_isa()),
                             quant::isa_name(quant::detected_isa()),
                             quant::cpu_has_avx512_bf16() ? ", with AVX-512 BF16" : "");
  return j;
}

void print_text(const nlohmann::json& j) {
  auto line = [](const std::string& key, const std::string& value) {
    std::cout << key << std::string(key.size() < 16 ? 16 - key.size() : 1, ' ') << value << "\n";
  };
  line("file", j["file"].get<std::string>());
  line("name", j["name"].get<std::string>());
  line("architecture", j["architecture"].get<std::string>());
  line("gguf version", std::to_string(j["gguf_version"].get<uint32_t>()));
  line("file size", fmt::format("{:.1f} MB", j["file_size"].get<double>() / 1e6));
  line("parameters", fmt::format("{:.1f} M in {} tensors", j["n_parameters"].get<double>() / 1e6,
                                 j["n_tensors"].get<uint64_t>()));
  std::string types;
  for (const auto& [k, v] : j["weight_types"].items()) types += fmt::format("{}{} x{}", types.empty() ? "" : ", ", k, v.get<uint64_t>());
  line("weight types", types);
  if (j.contains("dimensions")) {
    const auto& d = j["dimensions"];
    line("layers", std::to_string(d["n_layers"].get<int>()));
    line("embedding", std::to_string(d["n_embd"].get<int>()));
    line("heads", fmt::format("{} query, {} key/value, head size {}", d["n_heads"].get<int>(),
                              d["n_kv_heads"].get<int>(), d["head_dim"].get<int>()));
    line("feed-forward", std::to_string(d["n_ff"].get<int>()));
    line("context length", std::to_string(d["context_length"].get<int>()));
    line("rope", fmt::format("{}, theta {}{}", d["rope"].get<std::string>(), d["rope_theta"].get<float>(),
                             d["llama3_rope_freqs"].get<bool>() ? ", llama3 frequency factors" : ""));
    if (d["sliding_window"].get<int>() > 0) line("sliding window", std::to_string(d["sliding_window"].get<int>()));
    line("output", d["tied_output"].get<bool>() ? "tied to the token embeddings" : "separate matrix");
  }
  if (j.contains("tokenizer")) {
    const auto& t = j["tokenizer"];
    line("tokenizer", fmt::format("{} (pre: {}), {} tokens", t["model"].get<std::string>(),
                                  t["pre"].get<std::string>(), t["n_vocab"].get<int>()));
    for (const char* k : {"bos", "eos", "eot"}) {
      if (!t[k].is_null()) {
        line(std::string(k) + " token", fmt::format("{} '{}'", t[k]["id"].get<int>(),
                                                    escape_for_display(t[k]["text"].get<std::string>())));
      }
    }
    line("adds bos/eos", fmt::format("{}/{}", t["add_bos"].get<bool>() ? "yes" : "no",
                                      t["add_eos"].get<bool>() ? "yes" : "no"));
  } else {
    line("tokenizer", "error: " + j["tokenizer_error"].get<std::string>());
  }
  line("chat template", j["chat_template"].get<bool>() ? "yes" : "no");
  line("runnable", j["runnable"].get<bool>() ? "yes"
                                             : "no: " + j["not_runnable_because"].get<std::string>());
  line("kernels", j["kernels"].get<std::string>());
}

}  // namespace

int run_info(int argc, char** argv) {
  CLI::App app{"Show what a GGUF model file holds and whether attnscope can run it.\n\n"
               "examples:\n  attnscope info model.gguf\n  attnscope info model.gguf --json | jq .dimensions",
               "attnscope info"};
  std::string path;
  bool json = false;
  app.add_option("model", path, "GGUF model file")->required();
  app.add_flag("--json", json, "Print JSON instead of text");
  if (auto code = parse(app, argc, argv)) return *code;

  auto file = gguf::File::open(path);
  if (!file.ok()) return fail("info", file.error());
  const nlohmann::json j = describe(*file, path);
  if (json) {
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    print_text(j);
  }
  return kExitOk;
}

}  // namespace attnscope::cli
