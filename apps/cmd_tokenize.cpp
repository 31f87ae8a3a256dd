// attnscope tokenize -m MODEL -p TEXT: the model's tokens for a text.
#include <iostream>

#include <nlohmann/json.hpp>

#include "attnscope/gguf.h"
#include "attnscope/tokenizer.h"
#include "cli.h"

namespace attnscope::cli {

int run_tokenize(int argc, char** argv) {
  CLI::App app{"Split text into the model's tokens: one line per token with its id, the text it\n"
               "stands for (quoted, control characters escaped) and its vocabulary piece; or JSON.\n"
               "Only the tokenizer is read, so any GGUF with tokenizer metadata works.\n\n"
               "examples:\n  attnscope tokenize -m model.gguf -p \"Hello world\"\n"
               "  attnscope tokenize -m model.gguf --prompt-file prompt.txt --json",
               "attnscope tokenize"};
  std::string model_path;
  PromptFlags prompt;
  bool json = false, no_special = false, no_parse_special = false;
  app.add_option("-m,--model", model_path, "GGUF model file")->required();
  prompt.add_to(app);
  app.add_flag("--json", json, "Print a JSON array of {id, piece, text}");
  app.add_flag("--no-bos", no_special, "Do not add BOS/EOS tokens");
  app.add_flag("--no-parse-special", no_parse_special,
               "Treat special-token text such as <|im_start|> as plain text");
  if (auto code = parse(app, argc, argv)) return *code;

  auto text = prompt.read();
  if (!text.ok()) return fail("tokenize", text.error());
  auto file = gguf::File::open(model_path);
  if (!file.ok()) return fail("tokenize", file.error());
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok.ok()) return fail("tokenize", tok.error());

  const std::vector<int32_t> ids = tok->encode(*text, !no_special, !no_parse_special);
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (int32_t id : ids) {
      out.push_back({{"id", id}, {"piece", tok->token_text(id)}, {"text", tok->token_to_piece(id, true)}});
    }
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    for (int32_t id : ids) {
      std::cout << id << "\t'" << escape_for_display(tok->token_to_piece(id, true)) << "'\t"
                << escape_for_display(tok->token_text(id)) << "\n";
    }
  }
  return kExitOk;
}

}  // namespace attnscope::cli
