// attnscope serve: the browser viewer over HTTP, for runs on disk and (with --model)
// runs captured from the page.
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include "attnscope/capture.h"
#include "attnscope/server.h"
#include "cli.h"

namespace attnscope::cli {
namespace {

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_stop_signal(int) { g_stop = 1; }

}  // namespace

int run_serve(int argc, char** argv) {
  CLI::App app{"Serve the browser viewer for run directories (or directories of runs, whose runs are\n"
               "listed again on every visit). Binds 127.0.0.1 unless --host says otherwise; prints\n"
               "the URL on stdout once listening. With --model, the page can capture new runs\n"
               "(into the first directory of runs given, or ./runs). Ctrl-C stops.\n\n"
               "examples:\n"
               "  attnscope serve runs/cat\n"
               "  attnscope serve runs/ --port 0\n"
               "  attnscope serve --model model.gguf\n"
               "  attnscope serve runs/ --model model.gguf --port 9000",
               "attnscope serve"};
  std::vector<std::string> paths;
  std::string host = "127.0.0.1", model_path;
  int port = 8080;
  app.add_option("paths", paths, "Run directories or directories of runs");
  app.add_option("--host", host, "Address to bind (0.0.0.0: every interface; anyone who can reach it sees the runs)")
      ->default_val("127.0.0.1");
  app.add_option("--port", port, "Port; 0 = any free port")->default_val(8080)->check(CLI::Range(0, 65535));
  app.add_option("-m,--model", model_path, "GGUF model: enables capturing prompts from the page");
  if (auto code = parse(app, argc, argv)) return *code;

  if (paths.empty()) {
    if (model_path.empty()) {
      std::cerr << "attnscope serve: error: give a run directory or a directory of runs (or --model)\n"
                << "usage: attnscope serve RUN_DIR|RUNS_DIR... [--host H] [--port P] [--model MODEL]  (see --help)\n";
      return kExitUsage;
    }
    std::error_code ec;
    std::filesystem::create_directories("runs", ec);
    if (ec) return fail("serve", make_error("cannot create ./runs: {}", ec.message()));
    paths.push_back("runs");
  }

  server::ServeOptions options;
  options.run_paths = paths;
  options.host = host;
  options.port = port;
  if (!model_path.empty()) {
    auto model = Model::load(model_path);
    if (!model.ok()) return fail("serve", model.error());
    auto identity = identify_model(**model);
    if (!identity.ok()) return fail("serve", identity.error());
    options.model = *model;
    options.model_identity = *identity;
  }
  auto server = server::Server::create(std::move(options));
  if (!server.ok()) return fail("serve", server.error());
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  if (auto started = (*server)->start(); !started.ok()) return fail("serve", started.error());
  std::cout << (*server)->url() << std::endl;  // one line, flushed: scripts read it
  std::cerr << "attnscope serve: listening on " << (*server)->url() << " (Ctrl-C stops)\n";
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::cerr << "attnscope serve: stopping\n";
  (*server)->stop();
  return kExitOk;
}

}  // namespace attnscope::cli
