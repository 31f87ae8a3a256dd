// attnscope generate -m MODEL -p TEXT: stream a continuation to stdout.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "attnscope/generate.h"
#include "attnscope/model.h"
#include "attnscope/session.h"
#include "cli.h"

namespace attnscope::cli {

int run_generate(int argc, char** argv) {
  CLI::App app{"Continue a prompt with the model and stream the new text to stdout.\n"
               "Greedy (deterministic) unless --temp is above 0. Statistics go to stderr.\n\n"
               "examples:\n  attnscope generate -m model.gguf -p \"And God said\" -n 40\n"
               "  attnscope generate -m model.gguf --prompt-file p.txt --temp 0.8 --seed 7",
               "attnscope generate"};
  std::string model_path;
  PromptFlags prompt;
  SamplingFlags sampling;
  RunFlags run;
  int32_t n_predict = 64;
  bool echo = false, quiet = false;
  app.add_option("-m,--model", model_path, "GGUF model file")->required();
  prompt.add_to(app);
  app.add_option("-n,--n-predict", n_predict, "Number of tokens to generate")
      ->default_val(64)->check(CLI::NonNegativeNumber);
  sampling.add_to(app);
  run.add_to(app);
  app.add_flag("--echo", echo, "Print the prompt before the continuation");
  app.add_flag("-q,--quiet", quiet, "No statistics on stderr");
  if (auto code = parse(app, argc, argv)) return *code;

  auto text = prompt.read();
  if (!text.ok()) return fail("generate", text.error());
  if (text->empty()) {
    std::cerr << "attnscope generate: error: the prompt is empty (give -p TEXT or --prompt-file FILE)\n";
    return kExitUsage;
  }
  auto model = Model::load(model_path);
  if (!model.ok()) return fail("generate", model.error());
  const Tokenizer& tok = (*model)->tokenizer();
  const std::vector<int32_t> ids = tok.encode(*text, !run.no_bos, true);

  auto session = Session::create(*model, run.session_options());
  if (!session.ok()) return fail("generate", session.error());

  GenerateOptions go;
  go.max_new_tokens = n_predict;
  go.sampling = sampling.resolve();
  go.stop_at_end_of_generation = !run.ignore_eos;
  if (!quiet && !go.sampling.greedy()) {
    std::cerr << "sampling: " << go.sampling.describe() << "\n";
  }

  if (echo) std::cout << *text << std::flush;
  TokenTextStream stream(tok);
  auto result = generate(**session, ids, go, nullptr, [&](int32_t id) {
    if (!(go.stop_at_end_of_generation && tok.is_end_of_generation(id))) {
      std::cout << stream.push(id) << std::flush;
    }
    return true;
  });
  std::cout << stream.flush() << "\n" << std::flush;
  if (!result.ok()) return fail("generate", result.error());

  if (!quiet) {
    const double n_gen = static_cast<double>(result->generated.size());
    std::cerr << fmt::format(
        "prompt: {} tokens in {:.2f} s ({:.1f} tokens/s); generated: {} tokens in {:.2f} s ({:.1f} "
        "tokens/s); stop: {}; threads: {}\n",
        ids.size(), result->prefill_seconds,
        static_cast<double>(ids.size()) / std::max(result->prefill_seconds, 1e-9), n_gen,
        result->decode_seconds, n_gen / std::max(result->decode_seconds, 1e-9),
        stop_reason_name(result->stop_reason), (*session)->n_threads());
  }
  return kExitOk;
}

}  // namespace attnscope::cli
