// Export of a stored run to one safetensors file, for Python (numpy, torch):
//
//   from safetensors.numpy import load_file
//   t = load_file("run.safetensors")
//   t["attn.0"][head, query, key]
//
// Tensors (every matrix is (n_tokens, n_tokens), row = query, column = key, zeros
// above the diagonal; layers and heads are the selected ones, in ascending order):
//   tokens                int32 [n_tokens]
//   attn.<l>              [n_selected_heads, n_tokens, n_tokens]   aggregate "none"
//   attn.<l>.head_mean    [n_tokens, n_tokens]   mean over the selected heads
//   attn.<l>.head_max     [n_tokens, n_tokens]   max over the selected heads
//   attn.<l>.rollout      [n_tokens, n_tokens]   rollout R_l through layers 0..l
//   attn.layer_mean       [n_tokens, n_tokens]   mean over the selected layers of head_mean
// Formulas: docs/aggregations.md; file layout and metadata: docs/export.md.
//
// Streaming: memory is bounded by a few (n_tokens, n_tokens) matrices, whatever the
// number of layers and heads; the file goes through a temporary and a rename.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/safetensors_writer.h"
#include "attnscope/store.h"

namespace attnscope::store {

struct ExportOptions {
  std::vector<int32_t> layers;         // empty: all; else distinct, each in [0, n_layers)
  std::vector<int32_t> heads;          // empty: all; else distinct, each in [0, n_heads)
  std::vector<Aggregate> aggregates;   // empty: {kNone}; duplicates are ignored
  safetensors::Dtype dtype = safetensors::Dtype::kF32;  // F32, F16 or BF16
};

struct ExportProgress {
  std::string_view tensor;  // the tensor being written
  int32_t tensors_done = 0;
  int32_t n_tensors = 0;
  uint64_t bytes_done = 0;  // of the whole file
  uint64_t total_bytes = 0;
};
using ExportProgressFn = std::function<void(const ExportProgress&)>;

// Exports the reader's first n_rows() positions (all of them for a complete run; the
// positions whose rows were stored for an interrupted one: metadata "complete" says
// which). Errors name the output file, the tensor and the run.
Status export_safetensors(const RunReader& reader, const ExportOptions& options, const std::string& path,
                          const ExportProgressFn& progress = {});

// The tensor names export_safetensors writes for these options, in file order.
Result<std::vector<std::string>> export_tensor_names(const RunReader& reader, const ExportOptions& options);

// Parses a list like "0,3-5" (single indices and inclusive ranges, comma-separated, no
// spaces) of `what` ("layer", "head") in [0, count): sorted ascending. Errors name the
// offending item and the valid range: "invalid layer list '0,9': layer 9 is out of
// range (the run has layers 0-7)".
Result<std::vector<int32_t>> parse_index_list(std::string_view text, int32_t count, std::string_view what);

}  // namespace attnscope::store
