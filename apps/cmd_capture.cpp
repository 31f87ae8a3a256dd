// attnscope capture: run a prompt (or a JSONL batch of prompts) and store every
// attention probability in a run directory.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "attnscope/capture.h"
#include "cli.h"
#include "progress.h"

namespace attnscope::cli {
namespace {

std::atomic<bool> g_cancel{false};

extern "C" void on_sigint(int) {
  if (g_cancel.load()) std::_Exit(130);  // a second Ctrl-C stops at once; the run stays readable
  g_cancel.store(true);
}

struct BatchEntry {
  std::string id;
  std::string prompt;
  int32_t max_new_tokens = -1;  // -1: the command's -n
};

Result<std::vector<int32_t>> parse_token_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    try {
      size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      return make_error("invalid token id '{}' in --token-ids (expected comma-separated integers)", item);
    }
    pos = comma + 1;
  }
  return ids;
}

// A run id names a directory: 1-128 of [A-Za-z0-9._-], not starting with '.' or '-'.
bool is_safe_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id[0] == '.' || id[0] == '-') return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Reads and checks the whole JSONL file before any run starts.
Result<std::vector<BatchEntry>> read_batch(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error("cannot read prompts file {}", path);
  std::vector<BatchEntry> entries;
  std::set<std::string> ids;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path, line_no);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return make_error("{}: not a JSON object", where);
    BatchEntry e;
    if (!j.contains("prompt") || !j["prompt"].is_string()) {
      return make_error("{}: expected a string field \"prompt\"", where);
    }
    e.prompt = j["prompt"].get<std::string>();
    if (j.contains("id")) {
      if (!j["id"].is_string()) return make_error("{}: \"id\" must be a string", where);
      e.id = j["id"].get<std::string>();
    } else {
      e.id = fmt::format("line-{:04d}", line_no);
    }
    if (!is_safe_id(e.id)) {
      return make_error("{}: id '{}' must be 1-128 letters, digits, '.', '_' or '-' (it names a directory)",
                        where, e.id);
    }
    if (!ids.insert(e.id).second) return make_error("{}: duplicate id '{}'", where, e.id);
    if (j.contains("max_new_tokens")) {
      if (!j["max_new_tokens"].is_number_integer() || j["max_new_tokens"].get<int64_t>() < 0 ||
          j["max_new_tokens"].get<int64_t>() > 1000000) {
        return make_error("{}: \"max_new_tokens\" must be an integer >= 0", where);
      }
      e.max_new_tokens = j["max_new_tokens"].get<int32_t>();
    }
    entries.push_back(std::move(e));
  }
  if (entries.empty()) return make_error("{}: no prompts", path);
  return entries;
}

std::string summary(const CaptureResult& r) {
  const auto& m = r.manifest;
  const int32_t n = static_cast<int32_t>(m.tokens.size());
  const double values = static_cast<double>(m.n_layers) * m.n_heads * n * (n + 1) / 2.0;
  return fmt::format("{} prompt + {} generated tokens, {} layers x {} heads, {:.1f} MB ({:.2f} bytes/value), "
                     "prefill {:.2f} s, decode {:.2f} s, stop: {}",
                     m.n_prompt, n - m.n_prompt, m.n_layers, m.n_heads, r.store_bytes / 1e6,
                     values > 0 ? r.store_bytes / values : 0.0, m.timings.prefill_seconds,
                     m.timings.decode_seconds, m.stop_reason);
}

}  // namespace

int run_capture(int argc, char** argv) {
  CLI::App app{"Run a prompt and store every attention probability (all layers, heads, prompt and\n"
               "generated tokens) in a run directory; or, with --prompts, one run per JSONL line\n"
               "({\"id\": ..., \"prompt\": ..., \"max_new_tokens\": ...}), skipping runs already complete.\n\n"
               "examples:\n"
               "  attnscope capture -m model.gguf -p \"The cat sat on the mat.\" -n 16 -o runs/cat\n"
               "  attnscope capture -m model.gguf --prompts prompts.jsonl -o runs/\n"
               "  attnscope capture -m model.gguf --token-ids 1,450,6635 --precision u8 -o runs/ids",
               "attnscope capture"};
  std::string model_path, out_dir, prompts_file, token_ids_text, precision_name = "f16";
  PromptFlags prompt;
  SamplingFlags sampling;
  RunFlags run;
  int32_t n_predict = 32;
  bool overwrite = false, quiet = false;
  app.add_option("-m,--model", model_path, "GGUF model file")->required();
  prompt.add_to(app);
  app.add_option("--token-ids", token_ids_text, "Comma-separated token ids instead of a prompt");
  app.add_option("--prompts", prompts_file, "JSONL file: one run per line, into OUT/<id>");
  app.add_option("-o,--output", out_dir, "Run directory (batch: the directory of runs)")->required();
  app.add_option("-n,--n-predict", n_predict, "Tokens to generate")->default_val(32)->check(CLI::NonNegativeNumber);
  sampling.add_to(app);
  app.add_option("--precision", precision_name, "Stored precision: f16 (default), f32 or u8")
      ->check(CLI::IsMember({"f16", "f32", "u8"}));
  run.add_to(app);
  app.add_flag("--overwrite", overwrite, "Replace an existing run directory");
  app.add_flag("-q,--quiet", quiet, "Nothing on stderr but errors");
  if (auto code = parse(app, argc, argv)) return *code;

  const int sources = !prompt.text.empty() + !prompt.file.empty() + !token_ids_text.empty() + !prompts_file.empty();
  if (sources != 1) {
    std::cerr << "attnscope capture: error: give exactly one of -p, --prompt-file, --token-ids, --prompts\n"
              << "usage: attnscope capture -m MODEL (-p TEXT | --prompt-file FILE | --token-ids IDS | "
                 "--prompts FILE.jsonl) -o DIR  (see --help)\n";
    return kExitUsage;
  }

  CaptureRequest base;
  base.precision = *store::parse_precision(precision_name);
  base.max_new_tokens = n_predict;
  base.sampling = sampling.resolve();
  base.stop_at_end_of_generation = !run.ignore_eos;
  base.add_special = !run.no_bos;
  base.session = run.session_options();
  base.overwrite = overwrite;
  base.cancel = &g_cancel;

  std::vector<BatchEntry> batch;
  if (!prompts_file.empty()) {
    auto entries = read_batch(prompts_file);
    if (!entries.ok()) return fail("capture", entries.error());
    batch = std::move(*entries);
  } else if (!token_ids_text.empty()) {
    auto ids = parse_token_ids(token_ids_text);
    if (!ids.ok()) {
      std::cerr << "attnscope capture: error: " << ids.error().message << "\n";
      return kExitUsage;
    }
    base.token_ids = std::move(*ids);
  } else {
    auto text = prompt.read();
    if (!text.ok()) return fail("capture", text.error());
    if (text->empty()) return fail("capture", make_error("the prompt is empty"));
    base.prompt = std::move(*text);
  }

  auto model = Model::load(model_path);
  if (!model.ok()) return fail("capture", model.error());
  auto identity = identify_model(**model);
  if (!identity.ok()) return fail("capture", identity.error());

  std::signal(SIGINT, on_sigint);
  const bool show_progress = !quiet && stderr_is_tty();
  ProgressLine line(show_progress);
  auto run_one = [&](const CaptureRequest& request, const std::string& label) -> Result<CaptureResult> {
    return capture(*model, *identity, request, [&](const CaptureProgress& p) {
      line.update(label, p.phase, p.done, p.total, p.seconds);
    });
  };

  if (batch.empty()) {
    base.run_dir = out_dir;
    auto result = run_one(base, "");
    line.clear();
    if (!result.ok()) return fail("capture", result.error());
    if (result->cancelled) {
      std::cerr << "attnscope capture: interrupted; " << out_dir << " holds the rows captured so far "
                << "(marked incomplete)\n";
      return 130;
    }
    if (!quiet) std::cerr << out_dir << ": " << summary(*result) << "\n";
    return kExitOk;
  }

  // Batch mode: one run per entry; complete runs are skipped, interrupted ones redone.
  int failures = 0, done = 0, skipped = 0;
  for (size_t i = 0; i < batch.size() && !g_cancel.load(); ++i) {
    const BatchEntry& e = batch[i];
    CaptureRequest request = base;
    request.run_dir = (std::filesystem::path(out_dir) / e.id).string();
    request.id = e.id;
    request.prompt = e.prompt;
    if (e.max_new_tokens >= 0) request.max_new_tokens = e.max_new_tokens;
    auto existing = store::RunReader::open(request.run_dir);
    if (existing.ok() && (*existing)->complete() && !overwrite) {
      ++skipped;
      if (!quiet) std::cerr << request.run_dir << ": complete, skipped\n";
      continue;
    }
    request.overwrite = existing.ok() || overwrite;  // resume: an interrupted run is redone
    const std::string label = fmt::format("[{}/{} {}] ", i + 1, batch.size(), e.id);
    auto result = run_one(request, label);
    line.clear();
    if (!result.ok()) {
      ++failures;
      std::cerr << "attnscope capture: error: " << e.id << ": " << result.error().message << "\n";
      continue;
    }
    if (result->cancelled) break;
    ++done;
    if (!quiet) std::cerr << request.run_dir << ": " << summary(*result) << "\n";
  }
  if (g_cancel.load()) {
    std::cerr << "attnscope capture: interrupted; run the same command again to resume\n";
    return 130;
  }
  if (!quiet) {
    std::cerr << fmt::format("{} runs captured, {} skipped (already complete), {} failed\n", done, skipped,
                             failures);
  }
  return failures > 0 ? kExitRuntime : kExitOk;
}

}  // namespace attnscope::cli
