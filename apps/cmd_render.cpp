// attnscope render: a static viewer page (index.html, plus data/ for large runs) that
// opens from the file system with no server.
#include <cstdio>
#include <iostream>

#include "attnscope/render.h"
#include "cli.h"

namespace attnscope::cli {

int run_render(int argc, char** argv) {
  CLI::App app{"Write a static viewer page for a run (or two, side by side): OUT/index.html opens from\n"
               "the file system, no server needed. Run data up to --max-inline-mb goes inside the page;\n"
               "above it, into OUT/data/<run>/ files the page loads as needed (keep them next to it).\n\n"
               "examples:\n"
               "  attnscope render runs/cat -o view/cat\n"
               "  attnscope render runs/long -o view/long --max-inline-mb 5\n"
               "  attnscope render --compare runs/cat runs/dog -o view/cat-vs-dog",
               "attnscope render"};
  std::vector<std::string> runs;
  std::string out_dir;
  double max_inline_mb = 20;
  bool compare = false, quiet = false;
  app.add_option("runs", runs, "Run directory (two with --compare)")->required();
  app.add_option("-o,--output", out_dir, "Output directory (new, empty, or an earlier render)")->required();
  app.add_option("--max-inline-mb", max_inline_mb, "Largest run data (MB) kept inside index.html")
      ->default_val(20)->check(CLI::Range(0.0, 1e6));
  app.add_flag("--compare", compare, "Two runs side by side");
  app.add_flag("-q,--quiet", quiet, "Nothing on stderr but errors");
  if (auto code = parse(app, argc, argv)) return *code;
  if (runs.size() != (compare ? 2u : 1u)) {
    std::cerr << "attnscope render: error: " << (compare ? "--compare needs exactly two run directories"
                                                         : "give one run directory (two with --compare)")
              << "\nusage: attnscope render RUN_DIR -o OUT_DIR | attnscope render --compare RUN_A RUN_B -o OUT_DIR"
                 "  (see --help)\n";
    return kExitUsage;
  }

  server::RenderOptions options;
  options.max_inline_bytes = static_cast<uint64_t>(max_inline_mb * 1e6);
  options.compare = compare;
  const bool show_progress = !quiet && stderr_is_tty();
  if (show_progress) {
    options.progress = [](const server::RenderProgress& p) {
      std::fprintf(stderr, "\r\033[K[render %s] %lld/%lld layers", p.run.c_str(), static_cast<long long>(p.done),
                   static_cast<long long>(p.total));
      std::fflush(stderr);
    };
  }
  auto result = server::render(runs, out_dir, options);
  if (show_progress) std::fprintf(stderr, "\r\033[K");
  if (!result.ok()) return fail("render", result.error());
  if (!quiet) {
    std::cerr << fmt::format("{}/index.html: {:.1f} MB, run data {:.1f} MB in {} chunks {}\n", out_dir,
                             result->page_bytes / 1e6, result->data_bytes / 1e6, result->n_chunks,
                             result->inline_data ? "inside the page" : "under " + out_dir + "/data/");
  }
  return kExitOk;
}

}  // namespace attnscope::cli
