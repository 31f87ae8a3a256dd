// attnscope export RUN_DIR -o FILE.safetensors: a run's attention as one safetensors
// file for Python. Tensor names and metadata: docs/export.md.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "attnscope/export.h"
#include "attnscope/store.h"
#include "cli.h"

namespace attnscope::cli {
namespace {

int usage_error(const std::string& message) {
  std::cerr << "attnscope export: error: " << message << "\n"
            << "usage: attnscope export [options]  (see --help)\n";
  return kExitUsage;
}

// "\r[export] attn.3.head_mean  12/40 tensors  120.0/800.0 MB", at most ~10 redraws a second.
class ExportProgressLine {
 public:
  explicit ExportProgressLine(bool enabled) : enabled_(enabled) {}
  ~ExportProgressLine() { clear(); }
  void update(const store::ExportProgress& p) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (shown_ && p.tensors_done < p.n_tensors && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const std::string line = fmt::format("[export] {}  {}/{} tensors  {:.1f}/{:.1f} MB", p.tensor, p.tensors_done,
                                         p.n_tensors, static_cast<double>(p.bytes_done) / 1e6,
                                         static_cast<double>(p.total_bytes) / 1e6);
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void clear() {
    if (!shown_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

int run_export(int argc, char** argv) {
  CLI::App app{
      "Export a stored run's attention to a safetensors file for Python (numpy, torch).\n"
      "Tensors: tokens (int32 [n_tokens]); attn.<layer> [heads, query, key]; with --aggregate\n"
      "attn.<layer>.head_mean, attn.<layer>.head_max, attn.<layer>.rollout, attn.layer_mean\n"
      "[query, key]. Zeros above the diagonal. Formulas: docs/aggregations.md.\n"
      "An interrupted run exports the positions whose attention was stored (a note on stderr).\n\n"
      "examples:\n"
      "  attnscope export runs/hello -o hello.safetensors\n"
      "  attnscope export runs/hello -o part.safetensors --layers 0,3-5 --heads 0-7 --dtype f16\n"
      "  attnscope export runs/hello -o agg.safetensors --aggregate head-mean,rollout\n\n"
      "in Python:\n"
      "  from safetensors.numpy import load_file\n"
      "  t = load_file(\"hello.safetensors\")\n"
      "  t[\"attn.0\"][head, query, key]",
      "attnscope export"};
  std::string run_dir, output, layers, heads, dtype = "f32";
  std::vector<std::string> aggregates;
  app.add_option("run", run_dir, "Run directory (written by attnscope capture)")->required();
  app.add_option("-o,--output", output, "Output .safetensors file (replaced atomically if it exists)")
      ->required();
  app.add_option("--layers", layers, "Layers to export, e.g. 0,3-5 (default: all)");
  app.add_option("--heads", heads, "Heads to export and aggregate over, e.g. 0-7 (default: all)");
  app.add_option("--aggregate", aggregates,
                 "none, head-mean, head-max, layer-mean or rollout; repeatable or comma-separated "
                 "(default: none)")
      ->delimiter(',')
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--dtype", dtype, "Element type of the attention tensors: f32 or f16")
      ->check(CLI::IsMember({"f32", "f16"}));
  if (auto code = parse(app, argc, argv)) return *code;

  store::ExportOptions options;
  options.dtype = dtype == "f16" ? safetensors::Dtype::kF16 : safetensors::Dtype::kF32;
  for (const std::string& name : aggregates) {
    auto kind = store::parse_aggregate(name);
    if (!kind.ok()) return usage_error(kind.error().message);
    options.aggregates.push_back(*kind);
  }

  auto reader = store::RunReader::open(run_dir);
  if (!reader.ok()) return fail("export", reader.error());
  const store::RunReader& run = **reader;
  if (!layers.empty() || app.count("--layers") > 0) {
    auto list = store::parse_index_list(layers, run.n_layers(), "layer");
    if (!list.ok()) return usage_error(list.error().message);
    options.layers = *list;
  }
  if (!heads.empty() || app.count("--heads") > 0) {
    auto list = store::parse_index_list(heads, run.n_heads(), "head");
    if (!list.ok()) return usage_error(list.error().message);
    options.heads = *list;
  }
  if (!run.complete()) {
    std::cerr << fmt::format(
        "attnscope export: note: {} is an incomplete run: exporting the {} positions whose attention "
        "was stored for every layer and head\n",
        run_dir, run.n_rows());
  }

  ExportProgressLine line(stderr_is_tty());
  auto st = store::export_safetensors(run, options, output,
                                      [&](const store::ExportProgress& p) { line.update(p); });
  line.clear();
  if (!st.ok()) return fail("export", st.error());
  auto names = store::export_tensor_names(run, options);
  std::error_code ec;
  const auto size = std::filesystem::file_size(output, ec);
  std::cout << fmt::format("wrote {}: {} tensors, {} tokens, {:.1f} MB\n", output, names.ok() ? names->size() : 0,
                           run.n_rows(), ec ? 0.0 : static_cast<double>(size) / 1e6);
  return kExitOk;
}

}  // namespace attnscope::cli
