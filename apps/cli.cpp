#include "cli.h"

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

namespace attnscope::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"info", "show a model's architecture, dimensions, weight types and tokenizer", run_info},
      {"tokenize", "split text into the model's tokens", run_tokenize},
      {"generate", "continue a prompt, streaming the text", run_generate},
      {"capture", "run prompts and store every attention probability in a run directory", run_capture},
      {"export", "write a run's attention (or its aggregates) to a safetensors file for Python", run_export},
      {"serve", "show runs in the browser viewer (HTTP, 127.0.0.1); capture new ones with --model", run_serve},
      {"render", "write a run (or two, compared) as a static viewer page that opens from file://", run_render},
  };
  return table;
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);  // argv[0] is the command name, which CLI11 skips
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::cerr << app.get_name() << ": error: " << e.what() << "\n"
              << "usage: " << app.get_name() << " [options]  (see --help)\n";
    return kExitUsage;
  }
  return std::nullopt;
}

int fail(const std::string& command, const Error& error) {
  std::cerr << "attnscope " << command << ": error: " << error.message << "\n";
  return kExitRuntime;
}

void PromptFlags::add_to(CLI::App& app) {
  auto* p = app.add_option("-p,--prompt", text, "Prompt text");
  auto* f = app.add_option("--prompt-file", file, "Read the prompt from a file (UTF-8)");
  p->excludes(f);
}

Result<std::string> PromptFlags::read() const {
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return make_error("cannot read prompt file '{}'", file);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  return text;
}

void SamplingFlags::add_to(CLI::App& app) {
  app.add_option("--temp", params.temperature, "Sampling temperature; 0 = greedy")
      ->default_val(0.0f)->check(CLI::Range(0.0f, 100.0f));
  app.add_option("--top-k", params.top_k, "Keep the k most likely tokens (0 = all)")
      ->default_val(40)->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", params.top_p, "Keep the smallest set with this probability mass")
      ->default_val(0.95f)->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--min-p", params.min_p, "Drop tokens below this fraction of the top probability")
      ->default_val(0.05f)->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--seed", seed, "Random seed for sampling (default: random, printed)");
}

SamplingParams SamplingFlags::resolve() {
  SamplingParams p = params;
  if (seed) {
    p.seed = *seed;
  } else if (!p.greedy()) {
    p.seed = std::random_device{}();
  }
  return p;
}

void RunFlags::add_to(CLI::App& app) {
  app.add_option("-t,--threads", n_threads, "Threads (default: physical cores)")->check(CLI::NonNegativeNumber);
  app.add_option("-c,--ctx-size", n_ctx, "Context length (default: the model's)")->check(CLI::NonNegativeNumber);
  app.add_flag("--ignore-eos", ignore_eos, "Keep generating after an end-of-generation token");
  app.add_flag("--no-bos", no_bos, "Do not add the BOS token the model asks for");
  app.add_flag("--f32-activations", f32_activations,
               "Matrix products with f32 activations for every weight type: slower, and the arithmetic of "
               "the reference implementations on dequantized weights (default: activations quantized to 8 bits "
               "for quantized weights and rounded to bf16 for BF16 weights, as llama.cpp does)");
}

SessionOptions RunFlags::session_options() const {
  SessionOptions so;
  so.n_threads = n_threads;
  so.n_ctx = n_ctx;
  so.activations = f32_activations ? Activations::kF32 : Activations::kInt8;
  return so;
}

bool stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }

std::string escape_for_display(const std::string& text) {
  std::string out;
  for (unsigned char ch : text) {
    switch (ch) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          out += fmt::format("\\x{:02x}", ch);
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  return out;
}

}  // namespace attnscope::cli
