// Shared pieces of the attnscope command line: the command table, flag helpers
// declared once, and the mapping of errors to exit codes (1 runtime, 2 usage).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/sampling.h"
#include "attnscope/session.h"

namespace attnscope::cli {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[0] is the command name
};

// Every subcommand, in the order `attnscope --help` lists them.
const std::vector<Command>& commands();

int run_info(int argc, char** argv);
int run_tokenize(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_capture(int argc, char** argv);
int run_export(int argc, char** argv);
int run_serve(int argc, char** argv);
int run_render(int argc, char** argv);

// Parses argv into `app`. Returns an exit code when the command must stop here
// (--help: 0 after printing help; a usage error: 2 after a one-line error and usage).
std::optional<int> parse(CLI::App& app, int argc, char** argv);

// Prints "attnscope <command>: error: <message>" to stderr and returns kExitRuntime.
int fail(const std::string& command, const Error& error);

// Text given by -p or read from --prompt-file (exactly one of the two).
struct PromptFlags {
  std::string text;
  std::string file;
  void add_to(CLI::App& app);
  Result<std::string> read() const;
};

struct SamplingFlags {
  SamplingParams params;
  std::optional<uint64_t> seed;
  void add_to(CLI::App& app);
  // Picks a random seed when none was given and sampling is not greedy.
  SamplingParams resolve();
};

// Flags of commands that run the model: threads, context length, EOS and BOS handling.
struct RunFlags {
  int32_t n_threads = 0;
  int32_t n_ctx = 0;
  bool ignore_eos = false;
  bool no_bos = false;
  bool f32_activations = false;
  void add_to(CLI::App& app);
  SessionOptions session_options() const;  // threads, context, activations
};

// True when stderr is a terminal (progress lines only then).
bool stderr_is_tty();

// Makes control characters of untrusted model text visible: "\n" -> "\\n", etc.
std::string escape_for_display(const std::string& text);

}  // namespace attnscope::cli
