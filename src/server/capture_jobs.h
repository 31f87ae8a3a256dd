// Captures started from the viewer (POST /api/capture): one at a time, on a
// background thread, into a directory of runs the registry lists; progress and the
// resulting run id are polled through status().
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "attnscope/capture.h"
#include "attnscope/model.h"
#include "attnscope/result.h"
#include "server/run_registry.h"

namespace attnscope::server {

constexpr int32_t kDefaultCaptureTokens = 32;
constexpr int32_t kMaxCaptureTokens = 512;

struct JobStatus {
  std::string phase;  // "queued", "prefill", "decode", "done", "error", "cancelled"
  int32_t done = 0;   // tokens of this phase processed
  int32_t total = 0;  // tokens of this phase (decode: the maximum)
  std::optional<std::string> run;    // the run's id once complete
  std::optional<std::string> error;  // why it failed
};

class CaptureJobs {
 public:
  // `runs_dir` is created on the first capture and added to `registry`.
  CaptureJobs(std::shared_ptr<const Model> model, store::ModelIdentity identity, std::filesystem::path runs_dir,
              RunRegistry* registry);
  ~CaptureJobs();  // cancels a running capture (its run stays, incomplete) and waits for it
  CaptureJobs(const CaptureJobs&) = delete;
  CaptureJobs& operator=(const CaptureJobs&) = delete;

  enum class StartError { kBusy, kFailed };
  struct Started {
    std::string job;
    std::optional<StartError> error;
    std::string message;
  };
  // Starts a capture unless one is running (kBusy). The job id is the UTC time plus a
  // counter ("20250101-120000-1"); the run directory is runs_dir/<job id>.
  Started start(const std::string& prompt, int32_t max_new_tokens);
  std::optional<JobStatus> status(const std::string& job) const;
  const std::string& model_name() const { return model_name_; }
  const std::filesystem::path& runs_dir() const { return runs_dir_; }

 private:
  void run(std::string job, CaptureRequest request);

  std::shared_ptr<const Model> model_;
  store::ModelIdentity identity_;
  std::string model_name_;
  std::filesystem::path runs_dir_;
  RunRegistry* registry_;

  mutable std::mutex mutex_;
  std::map<std::string, JobStatus> jobs_;
  bool busy_ = false;
  uint64_t counter_ = 0;
  std::atomic<bool> cancel_{false};
  std::thread worker_;
};

}  // namespace attnscope::server
