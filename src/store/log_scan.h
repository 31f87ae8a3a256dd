// Finding the blocks of attention.log: from index.bin when it is valid, else by
// scanning the record headers (seeking over attention payloads) up to the first torn
// or corrupt record. Recovery rules: docs/store-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/store.h"
#include "store/format.h"
#include "store/reader_internal.h"

namespace attnscope::store {

// The validated header of attention.log. Errors name the file.
Result<format::LogHeader> read_log_header(int fd, const std::string& path, uint64_t file_size);

struct ScanResult {
  BlockMap blocks;
  std::vector<TokenRecord> tokens;  // the generated-token records, in log order
  uint64_t valid_end = 0;           // end of the last good record
  std::string stop;                 // why the scan stopped before the end ("" at a clean end)
};

// Never fails: a damaged record ends the scan (and is described in `stop`).
ScanResult scan_log(int fd, const std::string& path, const format::LogHeader& header,
                    uint64_t file_size);

// The blocks listed by index.bin; an error (a missing, truncated, corrupt or foreign
// index) means the caller scans instead.
Result<BlockMap> load_index(const std::string& index_path, const format::LogHeader& header,
                            uint64_t log_file_size);

}  // namespace attnscope::store
