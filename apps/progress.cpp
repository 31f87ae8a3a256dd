#include "progress.h"

#include <cstdio>

#include <fmt/format.h>

namespace attnscope::cli {

void ProgressLine::update(const std::string& prefix, const char* phase, int done, int total,
                          double seconds) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (shown_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double rate = seconds > 0 ? done / seconds : 0.0;
  std::string eta = "";
  if (rate > 0 && done < total) eta = fmt::format("  ETA {:.0f} s", (total - done) / rate);
  const std::string line = fmt::format("{}[{}] {}/{} tokens  {:.1f} tokens/s{}", prefix, phase, done,
                                       total, rate, eta);
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void ProgressLine::clear() {
  if (!enabled_ || !shown_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  shown_ = false;
}

}  // namespace attnscope::cli
