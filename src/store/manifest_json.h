// manifest.json as the store writes it: the public RunManifest plus the fields that
// tie the manifest to its attention.log (run_uid) and the stored row count.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "attnscope/store.h"
#include "store/utf8.h"  // valid_utf8, used with these

namespace attnscope::store {

struct StoreFields {
  std::optional<uint64_t> run_uid;  // "attention.run_uid": 16 hex digits
  std::optional<int32_t> n_rows;    // "attention.n_rows": rows stored for every (layer, head)
};

struct StoredManifest {
  RunManifest manifest;
  StoreFields store;
};

std::string manifest_to_json(const RunManifest& m, const StoreFields& store);
Result<StoredManifest> parse_stored_manifest(std::string_view json, const std::string& source);

}  // namespace attnscope::store
