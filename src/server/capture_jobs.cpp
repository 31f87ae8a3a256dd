#include "server/capture_jobs.h"

#include <ctime>

namespace attnscope::server {

namespace fs = std::filesystem;

CaptureJobs::CaptureJobs(std::shared_ptr<const Model> model, store::ModelIdentity identity, fs::path runs_dir,
                         RunRegistry* registry)
    : model_(std::move(model)),
      identity_(std::move(identity)),
      runs_dir_(std::move(runs_dir)),
      registry_(registry) {
  model_name_ = identity_.name.empty() ? identity_.file_name : identity_.name;
}

CaptureJobs::~CaptureJobs() {
  cancel_.store(true);
  if (worker_.joinable()) worker_.join();
}

CaptureJobs::Started CaptureJobs::start(const std::string& prompt, int32_t max_new_tokens) {
  std::lock_guard lock(mutex_);
  if (busy_) return {"", StartError::kBusy, "a capture is already running; wait for it to finish"};
  std::error_code ec;
  fs::create_directories(runs_dir_, ec);
  if (ec) return {"", StartError::kFailed, fmt::format("cannot create {}: {}", runs_dir_.string(), ec.message())};

  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  std::string job;
  do {
    job = fmt::format("{}-{}", stamp, ++counter_);
  } while (jobs_.count(job) || fs::exists(runs_dir_ / job, ec));

  CaptureRequest request;
  request.prompt = prompt;
  request.max_new_tokens = max_new_tokens;
  request.run_dir = (runs_dir_ / job).string();
  request.id = job;
  request.cancel = &cancel_;

  if (worker_.joinable()) worker_.join();  // the previous job's thread has finished (busy_ is false)
  jobs_[job] = JobStatus{"queued", 0, 0, std::nullopt, std::nullopt};
  busy_ = true;
  worker_ = std::thread(&CaptureJobs::run, this, job, std::move(request));
  return {job, std::nullopt, ""};
}

void CaptureJobs::run(std::string job, CaptureRequest request) {
  auto result = capture(model_, identity_, request, [&](const CaptureProgress& p) {
    std::lock_guard lock(mutex_);
    JobStatus& s = jobs_[job];
    s.phase = p.phase;
    s.done = p.done;
    s.total = p.total;
  });
  std::optional<std::string> run_id;
  if (result.ok() && !result->cancelled) {
    registry_->add_runs_dir(runs_dir_);
    run_id = registry_->id_of(request.run_dir);
  }
  std::lock_guard lock(mutex_);
  JobStatus& s = jobs_[job];
  if (!result.ok()) {
    s.phase = "error";
    s.error = result.error().message;
  } else if (result->cancelled) {
    s.phase = "cancelled";
  } else if (!run_id) {
    s.phase = "error";
    s.error = "the run was captured but cannot be listed";
  } else {
    s.phase = "done";
    s.run = run_id;
  }
  busy_ = false;
}

std::optional<JobStatus> CaptureJobs::status(const std::string& job) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

}  // namespace attnscope::server
