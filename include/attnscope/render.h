// `attnscope render`: a static viewer page that opens from file:// with no server.
// OUT/index.html holds the viewer's modules (an import map of data: URLs), its CSS and
// the run data as chunk scripts, inline up to a size budget, else as files under
// OUT/data/<run>/ that the page loads on demand. Layout: docs/viewer-api.md.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attnscope/result.h"

namespace attnscope::server {

struct RenderProgress {
  int64_t done = 0, total = 0;  // layers written, over all runs
  std::string run;              // the run being written
};

struct RenderOptions {
  uint64_t max_inline_bytes = 20'000'000;  // run data up to this size goes inline
  bool compare = false;                    // two runs side by side
  std::function<void(const RenderProgress&)> progress;
};

struct RenderResult {
  bool inline_data = true;    // false: chunks are files under OUT/data/
  uint64_t data_bytes = 0;    // bytes of chunk scripts (inline or files)
  uint64_t page_bytes = 0;    // bytes of index.html
  int64_t n_chunks = 0;
  std::vector<std::string> run_ids;
};

constexpr int32_t kRenderGroupHeads = 8;  // heads per "heads" chunk
constexpr int32_t kRenderGridSize = 64;

// Writes OUT/index.html (and OUT/data/<run>/ when over budget). `out_dir` is created;
// an existing one must be empty or an earlier render's output (its data for these
// runs is replaced). compare needs exactly two runs, else exactly one.
Result<RenderResult> render(const std::vector<std::string>& run_dirs, const std::string& out_dir,
                            const RenderOptions& options);

}  // namespace attnscope::server
