// One progress line on stderr, redrawn in place, shown only when stderr is a terminal.
#pragma once

#include <chrono>
#include <string>

namespace attnscope::cli {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  ~ProgressLine() { clear(); }
  // "[prefill] 512/1024 tokens  85.3 tokens/s  ETA 6 s", at most ~10 redraws a second.
  void update(const std::string& prefix, const char* phase, int done, int total, double seconds);
  void clear();

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace attnscope::cli
