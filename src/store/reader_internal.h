// The reader's state, for src/store (aggregate.cpp) and the store tests.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/store.h"

namespace attnscope::store {

// One attention record of attention.log: rows row_begin .. row_begin + n_rows - 1 of
// one (layer, head), lower triangle.
struct Block {
  int32_t row_begin = 0;
  int32_t n_rows = 0;
  uint64_t offset = 0;  // of the record header in attention.log
  uint32_t stored_size = 0;
  uint32_t raw_size = 0;
};

// Blocks of every (layer, head), each list contiguous from row 0 in row order.
struct BlockMap {
  int32_t n_layers = 0, n_heads = 0;
  std::vector<std::vector<Block>> lists;  // (n_layers * n_heads)

  void reset(int32_t layers, int32_t heads) {
    n_layers = layers;
    n_heads = heads;
    lists.assign(static_cast<size_t>(layers) * static_cast<size_t>(heads), {});
  }
  std::vector<Block>& at(int32_t layer, int32_t head) {
    return lists[static_cast<size_t>(layer) * static_cast<size_t>(n_heads) + static_cast<size_t>(head)];
  }
  const std::vector<Block>& at(int32_t layer, int32_t head) const {
    return lists[static_cast<size_t>(layer) * static_cast<size_t>(n_heads) + static_cast<size_t>(head)];
  }
  int32_t rows(int32_t layer, int32_t head) const {  // rows covered from 0
    const auto& l = at(layer, head);
    return l.empty() ? 0 : l.back().row_begin + l.back().n_rows;
  }
};

struct RunReader::Impl {
  std::string dir, log_path;
  int log_fd = -1;
  uint64_t log_size = 0;      // bytes of attention.log at open()
  RunManifest manifest;       // incomplete run: prompt tokens + recovered generated tokens
  Precision precision = Precision::kF16;
  int32_t n_layers = 0, n_heads = 0;
  int32_t n_rows = 0;         // min over (layer, head) of rows stored
  BlockMap blocks;
  bool used_index = false;    // the blocks came from index.bin, not a scan
  std::string note;           // why the index was not used / where the scan stopped ("" if neither)
  mutable std::atomic<uint64_t> bytes_read{0};  // bytes pread by read() (not by open())

  ~Impl();

  // Checks read()'s arguments: layer, head in range; 0 <= begin <= end <= n_rows.
  Status check_args(int32_t layer, int32_t head, Range q, Range k) const;
  // read() into out: (q.size(), k.size()) floats, every one written. Arguments must
  // have passed check_args. Decompresses only the blocks overlapping q.
  Status read_into(int32_t layer, int32_t head, Range q, Range k, float* out) const;
};

}  // namespace attnscope::store
