// The runs a server may show. Built from the command line's paths, each a run
// directory (it holds manifest.json) or a directory of runs (its immediate
// subdirectories that are runs). Each run gets a URL-safe id, its directory's name
// made unique ("cat", "cat-2"); a request names a run only by that id, never a path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/store.h"

namespace attnscope::server {

// What identifies one state of a run directory: the manifest's and the log's size and
// modification time. A capture in progress changes it; a complete run never does.
struct RunStamp {
  int64_t manifest_mtime_ns = 0, manifest_size = 0, log_mtime_ns = 0, log_size = 0;
  bool operator==(const RunStamp&) const = default;
};
RunStamp stamp_of(const std::filesystem::path& run_dir);

// A reader of one state of a run (shared by the requests that use it).
struct OpenRun {
  std::string id;
  RunStamp stamp;
  std::shared_ptr<const store::RunReader> reader;
};

// The run-list entry of /api/runs.
struct RunSummary {
  std::string id;
  std::string name;     // the directory's name
  std::string model;    // the model's general.name (or its file name)
  std::string prompt;
  int64_t n_tokens = 0;
  bool complete = false;
};

// "cat run" -> "cat_run": [A-Za-z0-9._-] only, 1-100 characters, not starting with '.' or '-'.
std::string url_safe_id(const std::string& name);

// True when `dir` holds a manifest.json (a run, complete or not).
bool is_run_dir(const std::filesystem::path& dir);

class RunRegistry {
 public:
  // Every path must be an existing directory. Thread-safe.
  static Result<std::unique_ptr<RunRegistry>> create(const std::vector<std::string>& paths);

  // Lists the directories again: new runs get new ids, ids of known runs never change.
  void rescan();
  // Adds a directory of runs (e.g. where captures go) and rescans.
  void add_runs_dir(const std::filesystem::path& dir);

  std::vector<std::string> ids() const;
  std::optional<std::filesystem::path> dir_of(const std::string& id) const;
  std::optional<std::string> id_of(const std::filesystem::path& dir) const;
  // The runs in order (paths as given, subdirectories by name), from their manifests;
  // a run whose manifest cannot be read is left out.
  std::vector<RunSummary> summaries() const;
  // The first path that is a directory of runs, if any.
  std::optional<std::filesystem::path> first_runs_dir() const;
  const std::vector<std::filesystem::path>& paths() const { return paths_; }

  // A reader of the run's current state: reopened when the directory changed since
  // the last call (a capture in progress), shared otherwise. Errors name the run.
  Result<OpenRun> open(const std::string& id);

 private:
  struct Entry {
    std::string id;
    std::filesystem::path dir;
    OpenRun cached;  // reader == nullptr until opened
  };
  RunRegistry() = default;
  void rescan_locked();

  mutable std::mutex mutex_;
  std::vector<std::filesystem::path> paths_;      // as given (canonical)
  std::vector<Entry> entries_;                    // in listing order
  std::map<std::string, std::string> id_by_dir_;  // canonical dir -> id, kept across rescans
};

}  // namespace attnscope::server
