#include "server/run_registry.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace attnscope::server {
namespace {

namespace fs = std::filesystem;

void stat_into(const fs::path& file, int64_t& mtime_ns, int64_t& size) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return;
  mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  size = static_cast<int64_t>(st.st_size);
}

Result<store::RunManifest> read_manifest(const fs::path& dir) {
  const fs::path file = dir / "manifest.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("cannot read {}", file.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return store::manifest_from_json(ss.str(), file.string());
}

}  // namespace

RunStamp stamp_of(const fs::path& run_dir) {
  RunStamp s;
  stat_into(run_dir / "manifest.json", s.manifest_mtime_ns, s.manifest_size);
  stat_into(run_dir / "attention.log", s.log_mtime_ns, s.log_size);
  return s;
}

std::string url_safe_id(const std::string& name) {
  std::string id;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    id += ok ? c : '_';
    if (id.size() == 100) break;
  }
  if (id.empty() || id[0] == '.' || id[0] == '-') id = "run" + id;
  return id;
}

bool is_run_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "manifest.json", ec);
}

Result<std::unique_ptr<RunRegistry>> RunRegistry::create(const std::vector<std::string>& paths) {
  std::unique_ptr<RunRegistry> r(new RunRegistry());
  for (const auto& p : paths) {
    std::error_code ec;
    if (!fs::is_directory(p, ec)) {
      return make_error("{}: not a directory (expected a run directory or a directory of runs)", p);
    }
    const fs::path canonical = fs::canonical(p, ec);
    if (ec) return make_error("{}: {}", p, ec.message());
    if (std::find(r->paths_.begin(), r->paths_.end(), canonical) == r->paths_.end()) {
      r->paths_.push_back(canonical);
    }
  }
  r->rescan();
  return r;
}

void RunRegistry::rescan() {
  std::lock_guard lock(mutex_);
  rescan_locked();
}

void RunRegistry::add_runs_dir(const fs::path& dir) {
  std::lock_guard lock(mutex_);
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(dir, ec);
  if (ec) canonical = dir;
  if (std::find(paths_.begin(), paths_.end(), canonical) == paths_.end()) paths_.push_back(canonical);
  rescan_locked();
}

void RunRegistry::rescan_locked() {
  std::vector<fs::path> dirs;  // runs, in listing order
  for (const auto& p : paths_) {
    if (is_run_dir(p)) {
      dirs.push_back(p);
      continue;
    }
    std::vector<fs::path> children;
    std::error_code ec;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code ec2;
      // Not through symlinks: only what lies inside the given directories is served.
      if (it->symlink_status(ec2).type() == fs::file_type::directory && is_run_dir(it->path())) {
        children.push_back(it->path());
      }
    }
    std::sort(children.begin(), children.end());
    dirs.insert(dirs.end(), children.begin(), children.end());
  }

  std::set<std::string> used;
  for (const auto& [dir, id] : id_by_dir_) used.insert(id);
  std::vector<Entry> next;
  std::set<fs::path> seen;
  for (const auto& dir : dirs) {
    if (!seen.insert(dir).second) continue;  // given twice (as a run and inside a directory)
    auto known = id_by_dir_.find(dir.string());
    if (known == id_by_dir_.end()) {
      const std::string base = url_safe_id(dir.filename().string());
      std::string id = base;
      for (int n = 2; used.count(id); ++n) id = fmt::format("{}-{}", base, n);
      used.insert(id);
      known = id_by_dir_.emplace(dir.string(), id).first;
    }
    Entry e{known->second, dir, {}};
    for (auto& old : entries_) {
      if (old.id == e.id) e.cached = std::move(old.cached);
    }
    next.push_back(std::move(e));
  }
  entries_ = std::move(next);
}

std::vector<std::string> RunRegistry::ids() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.id);
  return out;
}

std::optional<fs::path> RunRegistry::dir_of(const std::string& id) const {
  std::lock_guard lock(mutex_);
  for (const auto& e : entries_) {
    if (e.id == id) return e.dir;
  }
  return std::nullopt;
}

std::optional<std::string> RunRegistry::id_of(const fs::path& dir) const {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(dir, ec);
  if (ec) canonical = dir;
  std::lock_guard lock(mutex_);
  for (const auto& e : entries_) {
    if (e.dir == canonical) return e.id;
  }
  return std::nullopt;
}

std::optional<fs::path> RunRegistry::first_runs_dir() const {
  std::lock_guard lock(mutex_);
  for (const auto& p : paths_) {
    if (!is_run_dir(p)) return p;
  }
  return std::nullopt;
}

std::vector<RunSummary> RunRegistry::summaries() const {
  std::vector<std::pair<std::string, fs::path>> runs;
  {
    std::lock_guard lock(mutex_);
    for (const auto& e : entries_) runs.emplace_back(e.id, e.dir);
  }
  std::vector<RunSummary> out;
  for (const auto& [id, dir] : runs) {
    auto m = read_manifest(dir);
    if (!m.ok()) continue;
    RunSummary s;
    s.id = id;
    s.name = dir.filename().string();
    s.model = m->model.name.empty() ? m->model.file_name : m->model.name;
    s.prompt = m->prompt;
    s.n_tokens = static_cast<int64_t>(m->tokens.size());
    s.complete = m->complete;
    out.push_back(std::move(s));
  }
  return out;
}

Result<OpenRun> RunRegistry::open(const std::string& id) {
  fs::path dir;
  OpenRun cached;
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.id == id; });
    if (it == entries_.end()) return make_error("unknown run '{}'", id);
    dir = it->dir;
    cached = it->cached;
  }
  const RunStamp stamp = stamp_of(dir);
  if (cached.reader && cached.stamp == stamp) return cached;
  // Opening can take a while (an incomplete run's log is scanned): not under the lock.
  auto reader = store::RunReader::open(dir.string());
  if (!reader.ok()) return make_error("run '{}': {}", id, reader.error().message);
  OpenRun fresh{id, stamp, std::shared_ptr<const store::RunReader>(std::move(*reader))};
  std::lock_guard lock(mutex_);
  for (auto& e : entries_) {
    if (e.id == id) e.cached = fresh;
  }
  return fresh;
}

}  // namespace attnscope::server
