// Streaming export of a run to safetensors (names and layout: include/attnscope/export.h,
// docs/export.md). Layers are visited in ascending order and each head is read once:
// its (n_tokens, n_tokens) matrix goes straight to the file (attn.<l>) and into the
// head-mean / head-max accumulators; the rollout chain and the layer mean carry one
// (n_tokens, n_tokens) matrix each across layers.
#include "attnscope/export.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "store/aggregate_math.h"

namespace attnscope::store {
namespace {

using safetensors::Dtype;

struct Plan {
  int32_t n_tokens = 0;
  std::vector<int32_t> layers, heads;  // ascending
  bool raw = false, mean = false, max = false, layer_mean = false, rollout = false;
  int32_t last_layer = -1;  // the layers 0..last_layer are visited (rollout), else only `layers`
  std::vector<std::string> tensor_names;  // file order
  std::vector<std::vector<uint64_t>> shapes;
};

Status check_indices(const std::vector<int32_t>& v, int32_t count, const char* what) {
  std::set<int32_t> seen;
  for (int32_t i : v) {
    if (i < 0 || i >= count) {
      return make_error("export: {} {} is out of range (the run has {}s 0-{})", what, i, what, count - 1);
    }
    if (!seen.insert(i).second) return make_error("export: {} {} is selected twice", what, i);
  }
  return ok_status();
}

std::vector<int32_t> resolve(const std::vector<int32_t>& selected, int32_t count) {
  std::vector<int32_t> out = selected;
  if (out.empty()) {
    for (int32_t i = 0; i < count; ++i) out.push_back(i);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<Plan> make_plan(const RunReader& reader, const ExportOptions& options) {
  if (options.dtype != Dtype::kF32 && options.dtype != Dtype::kF16 && options.dtype != Dtype::kBF16) {
    return make_error("export: dtype {} is not a float type (F32, F16 or BF16)",
                      safetensors::dtype_name(options.dtype));
  }
  ATTN_RETURN_IF_ERROR(check_indices(options.layers, reader.n_layers(), "layer"));
  ATTN_RETURN_IF_ERROR(check_indices(options.heads, reader.n_heads(), "head"));
  Plan p;
  p.n_tokens = reader.n_rows();
  p.layers = resolve(options.layers, reader.n_layers());
  p.heads = resolve(options.heads, reader.n_heads());
  if (options.aggregates.empty()) p.raw = true;
  for (Aggregate a : options.aggregates) {
    switch (a) {
      case Aggregate::kNone: p.raw = true; break;
      case Aggregate::kHeadMean: p.mean = true; break;
      case Aggregate::kHeadMax: p.max = true; break;
      case Aggregate::kLayerMean: p.layer_mean = true; break;
      case Aggregate::kRollout: p.rollout = true; break;
    }
  }
  if (p.rollout && !p.layers.empty()) p.last_layer = p.layers.back();

  const auto n = static_cast<uint64_t>(p.n_tokens);
  p.tensor_names.push_back("tokens");
  p.shapes.push_back({n});
  for (int32_t l : p.layers) {
    auto add = [&](std::string name, std::vector<uint64_t> shape) {
      p.tensor_names.push_back(std::move(name));
      p.shapes.push_back(std::move(shape));
    };
    if (p.raw) add(fmt::format("attn.{}", l), {p.heads.size(), n, n});
    if (p.mean) add(fmt::format("attn.{}.head_mean", l), {n, n});
    if (p.max) add(fmt::format("attn.{}.head_max", l), {n, n});
    if (p.rollout) add(fmt::format("attn.{}.rollout", l), {n, n});
  }
  if (p.layer_mean) {
    p.tensor_names.push_back("attn.layer_mean");
    p.shapes.push_back({n, n});
  }
  return p;
}

// Valid UTF-8 (invalid sequences become U+FFFD), as safetensors metadata requires.
std::string sanitize_utf8(const std::string& s) {
  const std::string quoted = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(quoted).get<std::string>();
}

std::string json_list(const std::vector<int32_t>& v) { return nlohmann::json(v).dump(); }

void add_metadata(safetensors::Writer& w, const RunReader& reader, const Plan& p, const ExportOptions& options) {
  const RunManifest& m = reader.manifest();
  std::string aggregates;
  const std::pair<bool, Aggregate> kinds[] = {{p.raw, Aggregate::kNone},
                                              {p.mean, Aggregate::kHeadMean},
                                              {p.max, Aggregate::kHeadMax},
                                              {p.layer_mean, Aggregate::kLayerMean},
                                              {p.rollout, Aggregate::kRollout}};
  for (const auto& [on, kind] : kinds) {
    if (on) aggregates += fmt::format("{}{}", aggregates.empty() ? "" : ",", aggregate_name(kind));
  }
  nlohmann::json texts = nlohmann::json::array();
  for (int32_t i = 0; i < p.n_tokens; ++i) texts.push_back(m.tokens[static_cast<size_t>(i)].text);

  w.add_metadata("format", "attnscope-export");
  w.add_metadata("format_version", std::to_string(m.format_version));
  w.add_metadata("tool_version", sanitize_utf8(m.tool_version));
  w.add_metadata("run_id", sanitize_utf8(m.id));
  w.add_metadata("model", sanitize_utf8(m.model.name));
  w.add_metadata("model_file", sanitize_utf8(m.model.file_name));
  w.add_metadata("model_hash", sanitize_utf8(m.model.content_hash));
  w.add_metadata("architecture", sanitize_utf8(m.model.architecture));
  w.add_metadata("prompt", sanitize_utf8(m.prompt));
  w.add_metadata("n_prompt", std::to_string(std::min(m.n_prompt, p.n_tokens)));
  w.add_metadata("n_tokens", std::to_string(p.n_tokens));
  w.add_metadata("n_layers", std::to_string(reader.n_layers()));
  w.add_metadata("n_heads", std::to_string(reader.n_heads()));
  w.add_metadata("complete", reader.complete() ? "true" : "false");
  w.add_metadata("stop_reason", sanitize_utf8(m.stop_reason));
  w.add_metadata("precision", precision_name(m.precision));
  w.add_metadata("dtype", safetensors::dtype_name(options.dtype));
  w.add_metadata("aggregate", aggregates);
  w.add_metadata("layers", json_list(p.layers));
  w.add_metadata("heads", json_list(p.heads));
  w.add_metadata("token_texts", texts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// The writing half: one pass over the layers.
class Exporter {
 public:
  Exporter(const RunReader& reader, const Plan& plan, safetensors::Writer& w, const std::string& path,
           const ExportProgressFn& progress)
      : reader_(reader), p_(plan), w_(w), path_(path), progress_(progress),
        all_{0, plan.n_tokens}, nn_(static_cast<size_t>(plan.n_tokens) * static_cast<size_t>(plan.n_tokens)) {}

  Status run() {
    std::vector<int32_t> ids;
    for (int32_t i = 0; i < p_.n_tokens; ++i) ids.push_back(reader_.manifest().tokens[static_cast<size_t>(i)].id);
    ATTN_RETURN_IF_ERROR(w_.append_i32("tokens", ids));
    tensor_done();
    if (p_.n_tokens == 0) return ok_status();  // every other tensor is empty

    std::optional<RolloutChain> chain;
    if (p_.rollout) chain.emplace(all_, all_);
    std::optional<MeanAccumulator> layer_mean;
    if (p_.layer_mean) layer_mean.emplace(nn_);
    const int32_t end = p_.rollout ? p_.last_layer + 1 : 0;
    const std::set<int32_t> selected(p_.layers.begin(), p_.layers.end());
    std::vector<int32_t> visit;
    for (int32_t l = 0; l < end; ++l) visit.push_back(l);
    if (!p_.rollout) visit = p_.layers;

    for (int32_t l : visit) {
      const bool sel = selected.contains(l);
      const bool need_mean = p_.rollout || (sel && (p_.mean || p_.layer_mean));
      std::optional<MeanAccumulator> mean;
      if (need_mean) mean.emplace(nn_);
      std::optional<MaxAccumulator> max;
      if (sel && p_.max) max.emplace(nn_);
      const std::string raw_name = fmt::format("attn.{}", l);
      for (int32_t h : p_.heads) {
        auto m = reader_.read(l, h, all_, all_);  // (n_tokens, n_tokens)
        if (!m.ok()) return make_error("{}: layer {} head {}: {}", path_, l, h, m.error().message);
        if (m->size() != nn_) {
          return make_error("{}: layer {} head {}: the run returned {} values, expected {} x {}", path_, l, h,
                            m->size(), p_.n_tokens, p_.n_tokens);
        }
        if (sel && p_.raw) {
          ATTN_RETURN_IF_ERROR(w_.append_floats(raw_name, *m));
          report(raw_name);
        }
        if (mean) mean->add(*m);
        if (max) max->add(*m);
      }
      if (sel && p_.raw) tensor_done();
      std::vector<float> head_mean;
      if (mean) head_mean = mean->mean();
      if (sel && p_.mean) ATTN_RETURN_IF_ERROR(put(fmt::format("attn.{}.head_mean", l), head_mean));
      if (sel && p_.max) ATTN_RETURN_IF_ERROR(put(fmt::format("attn.{}.head_max", l), max->max()));
      if (chain) {
        chain->step(head_mean, all_);
        if (sel) ATTN_RETURN_IF_ERROR(put(fmt::format("attn.{}.rollout", l), chain->matrix()));
      }
      if (sel && layer_mean) layer_mean->add(head_mean);
    }
    if (layer_mean) ATTN_RETURN_IF_ERROR(put("attn.layer_mean", layer_mean->mean()));
    return ok_status();
  }

 private:
  Status put(const std::string& name, const std::vector<float>& m) {
    ATTN_RETURN_IF_ERROR(w_.append_floats(name, m));
    report(name);
    tensor_done();
    return ok_status();
  }
  void report(std::string_view name) {
    if (!progress_) return;
    ExportProgress e;
    e.tensor = name;
    e.tensors_done = done_;
    e.n_tensors = static_cast<int32_t>(p_.tensor_names.size());
    e.bytes_done = w_.bytes_written();
    e.total_bytes = w_.file_size();
    progress_(e);
  }
  void tensor_done() {
    ++done_;
    report(p_.tensor_names[static_cast<size_t>(done_ - 1)]);
  }

  const RunReader& reader_;
  const Plan& p_;
  safetensors::Writer& w_;
  const std::string& path_;
  const ExportProgressFn& progress_;
  Range all_;
  size_t nn_;
  int32_t done_ = 0;
};

}  // namespace

Result<std::vector<std::string>> export_tensor_names(const RunReader& reader, const ExportOptions& options) {
  ATTN_ASSIGN_OR_RETURN(Plan p, make_plan(reader, options));
  return p.tensor_names;
}

Status export_safetensors(const RunReader& reader, const ExportOptions& options, const std::string& path,
                          const ExportProgressFn& progress) {
  auto plan = make_plan(reader, options);
  if (!plan.ok()) return make_error("{}: {}", path, plan.error().message);
  const Plan& p = *plan;
  if (reader.manifest().tokens.size() < static_cast<size_t>(p.n_tokens)) {
    return make_error("{}: the run stores rows for {} positions but only {} tokens", path, p.n_tokens,
                      reader.manifest().tokens.size());
  }
  safetensors::Writer w;
  add_metadata(w, reader, p, options);
  for (size_t i = 0; i < p.tensor_names.size(); ++i) {
    w.add_tensor(p.tensor_names[i], i == 0 ? Dtype::kI32 : options.dtype, p.shapes[i]);
  }
  ATTN_RETURN_IF_ERROR(w.open(path));
  ATTN_RETURN_IF_ERROR(Exporter(reader, p, w, path, progress).run());
  return w.finish();
}

// ---- "0,3-5" ----

Result<std::vector<int32_t>> parse_index_list(std::string_view text, int32_t count, std::string_view what) {
  auto bad = [&](const std::string& why) -> Error {
    return make_error("invalid {} list '{}': {}", what, text, why);
  };
  auto number = [&](std::string_view s) -> std::optional<int64_t> {
    if (s.empty() || s.size() > 9) return std::nullopt;
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || s.front() < '0' || s.front() > '9') return std::nullopt;
    return v;
  };
  const std::string valid = count > 0 ? fmt::format("the run has {}s 0-{}", what, count - 1)
                                      : fmt::format("the run has no {}s", what);
  if (text.empty()) return bad(fmt::format("it is empty (expected e.g. 0,3-5; {})", valid));
  std::vector<int32_t> out;
  std::set<int32_t> seen;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view item = text.substr(start, comma - start);
    const size_t dash = item.find('-');
    const auto lo = number(item.substr(0, dash));
    const auto hi = dash == std::string_view::npos ? lo : number(item.substr(dash + 1));
    if (!lo || !hi) {
      return bad(fmt::format("'{}' is not a {} number or a range like 3-5", item, what));
    }
    if (*lo > *hi) return bad(fmt::format("range '{}' runs backwards", item));
    for (int64_t v = *lo; v <= *hi; ++v) {
      if (v >= count) return bad(fmt::format("{} {} is out of range ({})", what, v, valid));
      if (!seen.insert(static_cast<int32_t>(v)).second) return bad(fmt::format("{} {} is listed twice", what, v));
      out.push_back(static_cast<int32_t>(v));
    }
    start = comma + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace attnscope::store
