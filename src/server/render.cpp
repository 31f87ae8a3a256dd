// `attnscope render`: the viewer as one static page (layout: docs/viewer-api.md,
// "Static export"). Each run is read once, layer by layer: every head's matrix gives
// its "heads" chunk bytes, its grid thumbnail, and the layer's head mean and maximum;
// the head means give the layer mean and, step by step, the rollout.
#include "attnscope/render.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "attnscope/store.h"
#include "server/page.h"
#include "server/run_registry.h"
#include "server/slice.h"
#include "server/web_assets.h"

namespace attnscope::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using store::Range;

constexpr std::string_view kGenerator = "<meta name=\"generator\" content=\"attnscope render\">";
constexpr uint64_t kChunkOverhead = 256;  // bytes of a chunk script besides its base64 data

uint64_t base64_size(uint64_t n) { return (n + 2) / 3 * 4; }

// Lower triangle of an (n, n) matrix, row by row, as u8 = round(p * 255).
void append_triangle(std::vector<uint8_t>& out, const float* m, int32_t n) {
  for (int32_t i = 0; i < n; ++i) {
    const float* row = m + static_cast<size_t>(i) * static_cast<size_t>(n);
    for (int32_t k = 0; k <= i; ++k) {
      out.push_back(static_cast<uint8_t>(std::lround(std::clamp(row[k], 0.0f, 1.0f) * 255.0f)));
    }
  }
}

Status write_file(const fs::path& path, std::string_view content) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_error("cannot write {}", tmp.string());
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) return make_error("error writing {} (disk full?)", tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return make_error("cannot rename {} to {}: {}", tmp.string(), path.string(), ec.message());
  return ok_status();
}

// OUT must be new, empty, or an earlier render (its index.html says so).
Status check_out_dir(const fs::path& out) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return ok_status();
  if (!fs::is_directory(out, ec)) return make_error("{} exists and is not a directory", out.string());
  if (fs::is_empty(out, ec)) return ok_status();
  std::ifstream in(out / "index.html", std::ios::binary);
  std::string head(65536, '\0');  // the generator tag comes before the import map
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.find(kGenerator) == std::string::npos) {
    return make_error("{} is not empty and is not the output of attnscope render; choose another -o", out.string());
  }
  return ok_status();
}

struct RunInput {
  std::string id;
  std::unique_ptr<store::RunReader> reader;
};

// Expected bytes of a run's chunks (base64 data plus a bound on the rest).
uint64_t estimate_bytes(const store::RunReader& r, uint64_t manifest_bytes) {
  const uint64_t n = static_cast<uint64_t>(r.n_rows());
  const uint64_t tri = n * (n + 1) / 2;
  const uint64_t L = static_cast<uint64_t>(r.n_layers()), H = static_cast<uint64_t>(r.n_heads());
  const uint64_t groups = (H + kRenderGroupHeads - 1) / kRenderGroupHeads;
  uint64_t total = manifest_bytes + kChunkOverhead;
  for (uint64_t g = 0; g < groups; ++g) {
    const uint64_t heads = std::min<uint64_t>(kRenderGroupHeads, H - g * kRenderGroupHeads);
    total += L * (base64_size(heads * tri) + kChunkOverhead);
  }
  total += (3 * L + 1) * (base64_size(tri) + kChunkOverhead);
  total += base64_size(L * H * kRenderGridSize * kRenderGridSize) + kChunkOverhead;
  return total;
}

class ChunkSink {
 public:
  ChunkSink(bool inline_data, fs::path data_dir) : inline_(inline_data), data_dir_(std::move(data_dir)) {}

  Status emit(const std::string& run, const std::string& file_name, const json& chunk) {
    const std::string call = fmt::format("window.attnscopeChunk({});\n", script_json(chunk));
    bytes_ += call.size();
    ++count_;
    if (inline_) {
      scripts_ += "<script>";
      scripts_ += call;
      scripts_ += "</script>\n";
      return ok_status();
    }
    return write_file(data_dir_ / run / file_name, call);
  }
  const std::string& scripts() const { return scripts_; }
  uint64_t bytes() const { return bytes_; }
  int64_t count() const { return count_; }

 private:
  bool inline_;
  fs::path data_dir_;
  std::string scripts_;
  uint64_t bytes_ = 0;
  int64_t count_ = 0;
};

json data_chunk(const std::string& run, const char* kind, const std::vector<uint8_t>& bytes) {
  return {{"run", run}, {"kind", kind}, {"encoding", "u8"}, {"data", base64_encode(bytes)}};
}

// Every chunk of one run.
Status render_run(const RunInput& in, const json& manifest, ChunkSink& sink, const RenderOptions& options,
                  RenderProgress& progress) {
  const store::RunReader& r = *in.reader;
  const int32_t n = r.n_rows(), L = r.n_layers(), H = r.n_heads();
  const size_t nn = static_cast<size_t>(n) * static_cast<size_t>(n);
  ATTN_RETURN_IF_ERROR(sink.emit(in.id, "manifest.js", {{"run", in.id}, {"kind", "manifest"}, {"manifest", manifest}}));

  const size_t cells = static_cast<size_t>(kRenderGridSize) * kRenderGridSize;
  std::vector<uint8_t> grid(static_cast<size_t>(L) * static_cast<size_t>(H) * cells, 0);
  std::vector<double> layer_sum(nn, 0.0);  // sum over layers of the head means
  std::vector<float> rollout;              // R_{l-1}: (n, n)
  std::vector<float> mean(nn);
  std::vector<double> acc(static_cast<size_t>(n));
  for (int32_t l = 0; l < L; ++l) {
    std::vector<double> sum(nn, 0.0);
    std::vector<float> max(nn, 0.0f);
    for (int32_t h0 = 0; h0 < H; h0 += kRenderGroupHeads) {
      const int32_t h1 = std::min(H, h0 + kRenderGroupHeads);
      std::vector<uint8_t> bytes;
      bytes.reserve(static_cast<size_t>(h1 - h0) * (nn + static_cast<size_t>(n)) / 2);
      for (int32_t h = h0; h < h1; ++h) {
        ATTN_ASSIGN_OR_RETURN(auto m, r.read(l, h, Range{0, n}, Range{0, n}));  // (n, n)
        append_triangle(bytes, m.data(), n);
        for (size_t i = 0; i < nn; ++i) {
          sum[i] += m[i];
          max[i] = std::max(max[i], m[i]);
        }
        Thumbnail thumb(n, kRenderGridSize);
        thumb.add_rows(0, n, m.data());
        thumb.write(grid.data() + (static_cast<size_t>(l) * H + h) * cells);
      }
      json chunk = data_chunk(in.id, "heads", bytes);
      chunk["layer"] = l;
      chunk["head0"] = h0;
      chunk["head1"] = h1;
      ATTN_RETURN_IF_ERROR(sink.emit(in.id, fmt::format("L{}_H{}-{}.js", l, h0, h1), chunk));
    }
    for (size_t i = 0; i < nn; ++i) {
      mean[i] = static_cast<float>(sum[i] / H);
      layer_sum[i] += mean[i];
    }
    // Rollout: Â = rownorm(mean + I); R_l = Â · R_{l-1} (lower-triangular), R_0 = Â.
    std::vector<float> a_hat(nn, 0.0f);
    for (int32_t q = 0; q < n; ++q) {
      const float* row = mean.data() + static_cast<size_t>(q) * n;
      double row_sum = 1.0;
      for (int32_t k = 0; k < n; ++k) row_sum += row[k];
      for (int32_t k = 0; k <= q; ++k) {
        a_hat[static_cast<size_t>(q) * n + k] = static_cast<float>((row[k] + (k == q ? 1.0 : 0.0)) / row_sum);
      }
    }
    if (l == 0) {
      rollout = a_hat;
    } else {
      std::vector<float> next(nn, 0.0f);
      for (int32_t j = 0; j < n; ++j) {
        std::fill(acc.begin(), acc.begin() + j + 1, 0.0);
        for (int32_t jp = 0; jp <= j; ++jp) {
          const double a = a_hat[static_cast<size_t>(j) * n + jp];
          if (a == 0.0) continue;
          const float* prev = rollout.data() + static_cast<size_t>(jp) * n;
          for (int32_t k = 0; k <= jp; ++k) acc[k] += a * prev[k];
        }
        for (int32_t k = 0; k <= j; ++k) next[static_cast<size_t>(j) * n + k] = static_cast<float>(acc[k]);
      }
      rollout = std::move(next);
    }
    const std::pair<const char*, const std::vector<float>*> aggs[] = {
        {"head-mean", &mean}, {"head-max", &max}, {"rollout", &rollout}};
    for (const auto& [name, m] : aggs) {
      std::vector<uint8_t> bytes;
      append_triangle(bytes, m->data(), n);
      json chunk = data_chunk(in.id, "agg", bytes);
      chunk["layer"] = l;
      chunk["agg"] = name;
      ATTN_RETURN_IF_ERROR(sink.emit(in.id, fmt::format("L{}_{}.js", l, name), chunk));
    }
    ++progress.done;
    if (options.progress) options.progress(progress);
  }
  std::vector<float> layer_mean(nn);
  for (size_t i = 0; i < nn; ++i) layer_mean[i] = L > 0 ? static_cast<float>(layer_sum[i] / L) : 0.0f;
  std::vector<uint8_t> bytes;
  append_triangle(bytes, layer_mean.data(), n);
  json chunk = data_chunk(in.id, "agg", bytes);
  chunk["layer"] = -1;
  chunk["agg"] = "layer-mean";
  ATTN_RETURN_IF_ERROR(sink.emit(in.id, "L-1_layer-mean.js", chunk));
  return sink.emit(in.id, "grid.js",
                   {{"run", in.id}, {"kind", "grid"}, {"size", kRenderGridSize}, {"n_layers", L}, {"n_heads", H},
                    {"encoding", "u8"}, {"data", base64_encode(grid)}});
}

// The import map (every module as a data: URL), the CSS, the config and the chunk queue.
Result<std::string> page_head(const json& config) {
  json imports = json::object();
  std::string styles;
  for (const auto& f : web_files()) {
    if (f.path.ends_with(".js")) {
      imports[fmt::format("attnscope/{}", f.path)] = "data:text/javascript;base64," + base64_encode(f.data);
    } else if (f.path.ends_with(".css")) {
      const std::string_view css = as_text(f);
      std::string lowered(css);
      std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
      if (lowered.find("</style") != std::string::npos) {
        return make_error("web/{} contains '</style': it cannot be inlined", f.path);
      }
      styles += fmt::format("<style>/* {} */\n{}</style>\n", f.path, css);
    }
  }
  std::string head = std::string(kGenerator) + "\n";
  head += fmt::format("<script type=\"importmap\">{}</script>\n", script_json(json{{"imports", imports}}));
  head += styles;
  // Chunk scripts run before the modules: they queue here until the embedded data
  // source replaces window.attnscopeChunk and takes window.attnscopeChunks.
  head += fmt::format(
      "<script>window.ATTNSCOPE_CONFIG = {};\n"
      "window.attnscopeChunks = window.attnscopeChunks || [];\n"
      "window.attnscopeChunk = window.attnscopeChunk || function (c) {{ window.attnscopeChunks.push(c); }};</script>\n",
      script_json(config));
  return head;
}

}  // namespace

Result<RenderResult> render(const std::vector<std::string>& run_dirs, const std::string& out_dir,
                            const RenderOptions& options) {
  const size_t expected = options.compare ? 2 : 1;
  if (run_dirs.size() != expected) {
    return make_error("expected {} run director{}, got {}", expected, expected == 1 ? "y" : "ies", run_dirs.size());
  }
  const EmbeddedFile* index = find_web_file("index.html");
  if (!index) return make_error("this build has no web/index.html");
  const fs::path out(out_dir);
  ATTN_RETURN_IF_ERROR(check_out_dir(out));

  std::vector<RunInput> runs;
  std::vector<json> manifests;
  RenderResult result;
  uint64_t estimate = 0;
  RenderProgress progress;
  for (const auto& dir : run_dirs) {
    ATTN_ASSIGN_OR_RETURN(auto reader, store::RunReader::open(dir));
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(dir, ec);
    if (ec || canonical.filename().empty()) canonical = fs::absolute(dir);
    const std::string base = url_safe_id(canonical.filename().string());
    std::string id = base;
    for (int k = 2; std::find(result.run_ids.begin(), result.run_ids.end(), id) != result.run_ids.end(); ++k) {
      id = fmt::format("{}-{}", base, k);
    }
    json manifest = json::parse(store::manifest_to_json(reader->manifest()), nullptr, false);
    if (manifest.is_discarded()) return make_error("{}: cannot encode the manifest", dir);
    manifest["n_rows"] = reader->n_rows();
    estimate += estimate_bytes(*reader, script_json(manifest).size());
    progress.total += reader->n_layers();
    result.run_ids.push_back(id);
    manifests.push_back(std::move(manifest));
    runs.push_back({id, std::move(reader)});
  }
  result.inline_data = estimate <= options.max_inline_bytes;

  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return make_error("cannot create {}: {}", out.string(), ec.message());
  const fs::path data_dir = out / "data";
  for (const auto& run : runs) {  // this render's data replaces an earlier one's
    fs::remove_all(data_dir / run.id, ec);
    if (!result.inline_data) {
      fs::create_directories(data_dir / run.id, ec);
      if (ec) return make_error("cannot create {}: {}", (data_dir / run.id).string(), ec.message());
    }
  }
  if (fs::is_directory(data_dir, ec) && fs::is_empty(data_dir, ec)) fs::remove(data_dir, ec);

  ChunkSink sink(result.inline_data, data_dir);
  for (size_t i = 0; i < runs.size(); ++i) {
    progress.run = runs[i].id;
    ATTN_RETURN_IF_ERROR(render_run(runs[i], manifests[i], sink, options, progress));
  }
  const json config = {
      {"mode", "embedded"}, {"runs", result.run_ids}, {"compare", options.compare}, {"captureEnabled", false}};
  ATTN_ASSIGN_OR_RETURN(const std::string head, page_head(config));
  const std::string page = assemble_page(as_text(*index), head, sink.scripts());
  ATTN_RETURN_IF_ERROR(write_file(out / "index.html", page));
  result.data_bytes = sink.bytes();
  result.page_bytes = page.size();
  result.n_chunks = sink.count();
  return result;
}

}  // namespace attnscope::server
