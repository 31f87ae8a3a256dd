// The data the viewer asks for, computed from a RunReader: a (downsampled) matrix of
// one head or aggregate, and the thumbnails of every (layer, head). Independent of
// HTTP: the server parses query parameters with parse_matrix_query/parse_grid_size and
// calls these. Semantics: docs/viewer-api.md ("The data source interface").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/store.h"
#include "server/run_registry.h"

namespace attnscope::server {

constexpr int64_t kMaxMatrixCells = int64_t{4} << 20;  // per matrix request (output cells)
constexpr int32_t kMaxGridSize = 256;
constexpr int32_t kDefaultGridSize = 64;
// Rollout is computed in one piece over rows [k0, q1) and keys [0, q1): at most this many cells.
constexpr int64_t kMaxRolloutCells = int64_t{1} << 25;

struct MatrixQuery {
  store::Aggregate agg = store::Aggregate::kNone;
  int32_t layer = 0;
  int32_t head = 0;
  store::Range q, k;  // half-open positions
  int32_t stride = 1;
};

struct Matrix {
  int32_t rows = 0, cols = 0;
  std::vector<float> data;  // (rows, cols) row-major
};

struct Grid {
  int32_t n_layers = 0, n_heads = 0, size = 0;
  std::vector<uint8_t> data;  // (n_layers, n_heads, size, size)
};

struct RunShape {
  int32_t n_layers = 0, n_heads = 0, n_rows = 0;
};
RunShape shape_of(const store::RunReader& run);

// Query parameters as the HTTP layer has them (name -> value; a name may repeat).
using Params = std::multimap<std::string, std::string>;

// A decimal integer and nothing else ("12"; not "+12", " 12", "12x", "1e3"), in int32.
Result<int32_t> parse_int(const std::string& name, const std::string& text);

// layer, head, agg, q0, q1, k0, k1, stride; all optional (defaults: layer 0, head 0,
// agg "none", the full ranges [0, n_rows), stride 1). Unknown or repeated parameters
// are errors. Errors name the parameter.
Result<MatrixQuery> parse_matrix_query(const Params& params, const RunShape& shape);
// Checks a query against a run's shape: ranges, layer/head (where used), stride, size.
Status check_matrix_query(const MatrixQuery& query, const RunShape& shape);
// size, 1..256 (default 64).
Result<int32_t> parse_grid_size(const Params& params);

// The matrix of q rows x k keys, each output cell the maximum of its stride x stride
// block: ceil(|q| / stride) x ceil(|k| / stride). Reads in bands of rows (bounded
// memory) except for rollout, which the reader computes in one piece.
Result<Matrix> matrix(const store::RunReader& run, const MatrixQuery& query);

// Thumbnail cell (i, j) of an n_rows x n_rows matrix covers rows [lo(i), hi(i)) and
// keys [lo(j), hi(j)), lo(i) = floor(i * n / size), hi(i) = max(lo(i) + 1,
// floor((i + 1) * n / size)) (a partition when n >= size, nearest-neighbour
// upsampling when n < size); its value is the maximum there, scaled so that the
// thumbnail's largest value is 255 (an all-zero thumbnail stays 0).
int32_t grid_cell_begin(int32_t i, int32_t n, int32_t size);
int32_t grid_cell_end(int32_t i, int32_t n, int32_t size);

// One thumbnail, from the rows of an n x n matrix given in any bands.
class Thumbnail {
 public:
  Thumbnail(int32_t n, int32_t size);
  // rows [row0, row0 + n_rows) of the matrix: (n_rows, n) row-major.
  void add_rows(int32_t row0, int32_t n_rows, const float* rows);
  // size x size bytes, scaled to a maximum of 255; every row must have been added.
  void write(uint8_t* out) const;

 private:
  int32_t n_, size_;
  std::vector<int32_t> lo_, hi_;
  std::vector<float> row_max_;  // (n, size): per row, the maximum in each key cell
};

Result<Grid> grid(const store::RunReader& run, int32_t size);

// Grids computed once per (run, size) and kept while the run does not change.
class GridCache {
 public:
  Result<std::shared_ptr<const Grid>> get(const OpenRun& run, int32_t size);

 private:
  struct Entry {
    RunStamp stamp;
    std::shared_ptr<const Grid> grid;
  };
  static constexpr size_t kMaxBytes = 256u << 20;  // thumbnails kept across runs and sizes
  std::mutex mutex_;
  std::map<std::pair<std::string, int32_t>, Entry> entries_;
  size_t bytes_ = 0;
};

}  // namespace attnscope::server
