// Runs a program and captures its exit status, stdout and stderr (for CLI tests).
#pragma once

#include <string>
#include <vector>

namespace attnscope::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the signal that ended it, 0 if none
  std::string out;
  std::string err;
};

ProcessResult run_process(const std::vector<std::string>& argv);

// The attnscope binary under test (ATTNSCOPE_CLI, set by ctest).
std::string cli_path();

}  // namespace attnscope::testing
