// attnscope: see what a language model pays attention to.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "attnscope/quant.h"
#include "attnscope/version.h"
#include "cli.h"

namespace {

void print_overview(std::ostream& out) {
  out << "attnscope " << attnscope::kVersion << " - see what a language model pays attention to\n\n"
      << "usage: attnscope <command> [options]\n\ncommands:\n";
  for (const auto& c : attnscope::cli::commands()) {
    out << "  " << c.name << std::string(12 - std::string(c.name).size(), ' ') << c.summary << "\n";
  }
  out << "\nRun 'attnscope <command> --help' for a command's options and examples.\n"
      << "\nexamples:\n"
      << "  attnscope info model.gguf\n"
      << "  attnscope generate -m model.gguf -p \"Once upon a time\" -n 32\n";
}

}  // namespace

int main(int argc, char** argv) {
  using attnscope::cli::kExitUsage;
  if (argc < 2) {
    print_overview(std::cerr);
    return kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_overview(std::cout);
    return 0;
  }
  if (name == "--version" || name == "version") {
    std::cout << "attnscope " << attnscope::kVersion << "\n";
    return 0;
  }
  for (const auto& c : attnscope::cli::commands()) {
    if (name != c.name) continue;
    // A bad ATTNSCOPE_CPU would otherwise be ignored silently by the kernel dispatch.
    if (const char* isa = std::getenv("ATTNSCOPE_CPU"); isa != nullptr && *isa != '\0') {
      if (auto parsed = attnscope::quant::parse_isa(isa); !parsed.ok()) {
        std::cerr << "attnscope " << name << ": error: " << parsed.error().message << "\n";
        return kExitUsage;
      }
    }
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const std::bad_alloc&) {
      std::cerr << "attnscope " << name << ": error: out of memory\n";
      return attnscope::cli::kExitRuntime;
    } catch (const std::exception& e) {  // a bug, not an expected error: still exit cleanly
      std::cerr << "attnscope " << name << ": internal error: " << e.what() << "\n";
      return attnscope::cli::kExitRuntime;
    }
  }
  std::cerr << "attnscope: error: unknown command '" << name << "'\n"
            << "usage: attnscope <command> [options]  (see attnscope --help)\n";
  return kExitUsage;
}
