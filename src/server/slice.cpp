#include "server/slice.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace attnscope::server {
namespace {

using store::Aggregate;
using store::Range;

constexpr int64_t kBandCells = int64_t{1} << 20;  // input cells read at a time

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Checks that every parameter is known and given at most once.
Status check_names(const Params& params, std::initializer_list<const char*> known) {
  std::set<std::string> seen;
  for (const auto& [name, value] : params) {
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return name == k; }) == known.end()) {
      std::string list;
      for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return make_error("unknown parameter '{}' (expected {})", name, list);
    }
    if (!seen.insert(name).second) return make_error("invalid {}: given more than once", name);
  }
  return ok_status();
}

const std::string* find_param(const Params& params, const char* name) {
  auto it = params.find(name);
  return it == params.end() ? nullptr : &it->second;
}

Status get_int(const Params& params, const char* name, int32_t& out) {
  if (const std::string* text = find_param(params, name)) {
    ATTN_ASSIGN_OR_RETURN(out, parse_int(name, *text));
  }
  return ok_status();
}

Status check_range(const char* b_name, const char* e_name, Range r, int32_t n_rows) {
  if (r.begin < 0) return make_error("invalid {}: {} is negative", b_name, r.begin);
  if (r.end > n_rows) {
    return make_error("invalid {}: {} is beyond the run's {} rows", e_name, r.end, n_rows);
  }
  if (r.begin > r.end) return make_error("invalid {}: {} is greater than {} ({})", b_name, r.begin, e_name, r.end);
  return ok_status();
}

// out (rows, cols) = max over each stride x stride block of `in`: (in_rows, k.size())
// holding query rows row0 .. row0 + in_rows - 1 (row0 relative to q.begin).
void pool_into(Matrix& out, const std::vector<float>& in, int32_t row0, int32_t in_rows, int32_t n_keys,
               int32_t stride, const std::vector<int32_t>& col_cell) {
  for (int32_t r = 0; r < in_rows; ++r) {
    float* dst = out.data.data() + static_cast<size_t>((row0 + r) / stride) * static_cast<size_t>(out.cols);
    const float* src = in.data() + static_cast<size_t>(r) * static_cast<size_t>(n_keys);
    for (int32_t c = 0; c < n_keys; ++c) dst[col_cell[c]] = std::max(dst[col_cell[c]], src[c]);
  }
}

}  // namespace

RunShape shape_of(const store::RunReader& run) { return {run.n_layers(), run.n_heads(), run.n_rows()}; }

Result<int32_t> parse_int(const std::string& name, const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
    return make_error("invalid {}: '{}' is not an integer", name, text.substr(0, 40));
  }
  if (ec == std::errc::result_out_of_range || v < INT32_MIN || v > INT32_MAX) {
    return make_error("invalid {}: {} is out of range", name, text.substr(0, 40));
  }
  return static_cast<int32_t>(v);
}

Result<MatrixQuery> parse_matrix_query(const Params& params, const RunShape& shape) {
  ATTN_RETURN_IF_ERROR(check_names(params, {"layer", "head", "agg", "q0", "q1", "k0", "k1", "stride"}));
  MatrixQuery q;
  q.q = {0, shape.n_rows};
  q.k = {0, shape.n_rows};
  if (const std::string* agg = find_param(params, "agg")) {
    auto kind = store::parse_aggregate(*agg);
    if (!kind.ok()) return make_error("invalid agg: {}", kind.error().message);
    q.agg = *kind;
  }
  ATTN_RETURN_IF_ERROR(get_int(params, "layer", q.layer));
  ATTN_RETURN_IF_ERROR(get_int(params, "head", q.head));
  ATTN_RETURN_IF_ERROR(get_int(params, "q0", q.q.begin));
  ATTN_RETURN_IF_ERROR(get_int(params, "q1", q.q.end));
  ATTN_RETURN_IF_ERROR(get_int(params, "k0", q.k.begin));
  ATTN_RETURN_IF_ERROR(get_int(params, "k1", q.k.end));
  ATTN_RETURN_IF_ERROR(get_int(params, "stride", q.stride));
  ATTN_RETURN_IF_ERROR(check_matrix_query(q, shape));
  return q;
}

Status check_matrix_query(const MatrixQuery& q, const RunShape& shape) {
  if (q.agg != Aggregate::kLayerMean && (q.layer < 0 || q.layer >= shape.n_layers)) {
    return make_error("invalid layer: {} is out of range 0..{}", q.layer, shape.n_layers - 1);
  }
  if (q.agg == Aggregate::kNone && (q.head < 0 || q.head >= shape.n_heads)) {
    return make_error("invalid head: {} is out of range 0..{}", q.head, shape.n_heads - 1);
  }
  ATTN_RETURN_IF_ERROR(check_range("q0", "q1", q.q, shape.n_rows));
  ATTN_RETURN_IF_ERROR(check_range("k0", "k1", q.k, shape.n_rows));
  if (q.stride < 1) return make_error("invalid stride: {} (expected an integer >= 1)", q.stride);
  const int64_t cells = ceil_div(q.q.size(), q.stride) * ceil_div(q.k.size(), q.stride);
  if (cells > kMaxMatrixCells) {
    return make_error("invalid stride: {} gives {} x {} = {} cells, more than {} per request", q.stride,
                      ceil_div(q.q.size(), q.stride), ceil_div(q.k.size(), q.stride), cells, kMaxMatrixCells);
  }
  if (q.agg == Aggregate::kRollout && q.q.size() > 0 && q.k.size() > 0) {
    const int64_t work = static_cast<int64_t>(q.q.end - std::min(q.k.begin, q.q.begin)) * q.q.end;
    if (work > kMaxRolloutCells) {
      return make_error("invalid q1: rollout through {} rows is more than this server computes per request ({} "
                        "cells); ask for fewer rows",
                        q.q.end, kMaxRolloutCells);
    }
  }
  return ok_status();
}

Result<int32_t> parse_grid_size(const Params& params) {
  ATTN_RETURN_IF_ERROR(check_names(params, {"size"}));
  int32_t size = kDefaultGridSize;
  ATTN_RETURN_IF_ERROR(get_int(params, "size", size));
  if (size < 1 || size > kMaxGridSize) return make_error("invalid size: {} is out of range 1..{}", size, kMaxGridSize);
  return size;
}

Result<Matrix> matrix(const store::RunReader& run, const MatrixQuery& query) {
  ATTN_RETURN_IF_ERROR(check_matrix_query(query, shape_of(run)));
  const int32_t s = query.stride;
  Matrix out;
  out.rows = static_cast<int32_t>(ceil_div(query.q.size(), s));
  out.cols = static_cast<int32_t>(ceil_div(query.k.size(), s));
  out.data.assign(static_cast<size_t>(out.rows) * static_cast<size_t>(out.cols), 0.0f);
  if (out.data.empty()) return out;
  const int32_t n_keys = query.k.size();
  std::vector<int32_t> col_cell(static_cast<size_t>(n_keys));
  for (int32_t c = 0; c < n_keys; ++c) col_cell[c] = c / s;

  if (query.agg == Aggregate::kRollout) {  // one piece: each call would redo the chain
    ATTN_ASSIGN_OR_RETURN(auto in, run.aggregate(query.agg, query.layer, query.head, query.q, query.k));
    pool_into(out, in, 0, query.q.size(), n_keys, s, col_cell);
    return out;
  }
  // Bands of whole output rows, about kBandCells input values each.
  const int64_t band_out_rows = std::max<int64_t>(1, kBandCells / (static_cast<int64_t>(n_keys) * s));
  const int32_t band = static_cast<int32_t>(std::min<int64_t>(band_out_rows * s, query.q.size()));
  for (int32_t r0 = 0; r0 < query.q.size(); r0 += band) {
    const Range rows{query.q.begin + r0, std::min(query.q.begin + r0 + band, query.q.end)};
    ATTN_ASSIGN_OR_RETURN(auto in, run.aggregate(query.agg, query.layer, query.head, rows, query.k));
    pool_into(out, in, r0, rows.size(), n_keys, s, col_cell);
  }
  return out;
}

int32_t grid_cell_begin(int32_t i, int32_t n, int32_t size) {
  return static_cast<int32_t>(static_cast<int64_t>(i) * n / size);
}

int32_t grid_cell_end(int32_t i, int32_t n, int32_t size) {
  return std::max(grid_cell_begin(i, n, size) + 1, grid_cell_begin(i + 1, n, size));
}

Thumbnail::Thumbnail(int32_t n, int32_t size)
    : n_(n), size_(size), lo_(size), hi_(size), row_max_(static_cast<size_t>(n) * static_cast<size_t>(size), 0.0f) {
  for (int32_t i = 0; i < size; ++i) {
    lo_[i] = grid_cell_begin(i, n, size);
    hi_[i] = grid_cell_end(i, n, size);
  }
}

void Thumbnail::add_rows(int32_t row0, int32_t n_rows, const float* rows) {
  for (int32_t r = 0; r < n_rows; ++r) {
    const float* src = rows + static_cast<size_t>(r) * static_cast<size_t>(n_);
    float* dst = row_max_.data() + static_cast<size_t>(row0 + r) * static_cast<size_t>(size_);
    for (int32_t j = 0; j < size_; ++j) dst[j] = *std::max_element(src + lo_[j], src + hi_[j]);
  }
}

void Thumbnail::write(uint8_t* out) const {
  const size_t cells = static_cast<size_t>(size_) * static_cast<size_t>(size_);
  std::fill(out, out + cells, uint8_t{0});
  if (n_ == 0) return;
  std::vector<float> thumb(cells);
  float peak = 0.0f;
  for (int32_t i = 0; i < size_; ++i) {
    for (int32_t j = 0; j < size_; ++j) {
      float m = 0.0f;
      for (int32_t r = lo_[i]; r < hi_[i]; ++r) m = std::max(m, row_max_[static_cast<size_t>(r) * size_ + j]);
      thumb[static_cast<size_t>(i) * size_ + j] = m;
      peak = std::max(peak, m);
    }
  }
  if (peak <= 0.0f) return;
  for (size_t c = 0; c < cells; ++c) {
    out[c] = static_cast<uint8_t>(std::clamp(std::lround(thumb[c] / peak * 255.0f), 0L, 255L));
  }
}

Result<Grid> grid(const store::RunReader& run, int32_t size) {
  if (size < 1 || size > kMaxGridSize) return make_error("invalid size: {} is out of range 1..{}", size, kMaxGridSize);
  const RunShape shape = shape_of(run);
  const int32_t n = shape.n_rows;
  Grid g{shape.n_layers, shape.n_heads, size, {}};
  const size_t cells = static_cast<size_t>(size) * static_cast<size_t>(size);
  const size_t bytes = static_cast<size_t>(shape.n_layers) * static_cast<size_t>(shape.n_heads) * cells;
  if (bytes > (256u << 20)) {
    return make_error("invalid size: {} thumbnails of {}x{} need {} MB (at most 256 MB)",
                      int64_t{shape.n_layers} * shape.n_heads, size, size, bytes >> 20);
  }
  g.data.assign(bytes, 0);
  if (n == 0) return g;
  const int32_t band = static_cast<int32_t>(std::clamp<int64_t>(kBandCells / n, 1, n));
  for (int32_t l = 0; l < shape.n_layers; ++l) {
    for (int32_t h = 0; h < shape.n_heads; ++h) {
      Thumbnail thumb(n, size);
      for (int32_t r0 = 0; r0 < n; r0 += band) {
        const Range rows{r0, std::min(r0 + band, n)};
        ATTN_ASSIGN_OR_RETURN(auto in, run.read(l, h, rows, Range{0, n}));  // (rows, n)
        thumb.add_rows(r0, rows.size(), in.data());
      }
      thumb.write(g.data.data() + (static_cast<size_t>(l) * shape.n_heads + h) * cells);
    }
  }
  return g;
}

Result<std::shared_ptr<const Grid>> GridCache::get(const OpenRun& run, int32_t size) {
  const auto key = std::make_pair(run.id, size);
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.stamp == run.stamp) return it->second.grid;
  }
  ATTN_ASSIGN_OR_RETURN(auto computed, grid(*run.reader, size));
  auto shared = std::make_shared<const Grid>(std::move(computed));
  std::lock_guard lock(mutex_);
  if (bytes_ + shared->data.size() > kMaxBytes) {  // many runs x sizes: start over
    entries_.clear();
    bytes_ = 0;
  }
  if (auto old = entries_.find(key); old != entries_.end()) bytes_ -= old->second.grid->data.size();
  entries_[key] = Entry{run.stamp, shared};
  bytes_ += shared->data.size();
  return shared;
}

}  // namespace attnscope::server
