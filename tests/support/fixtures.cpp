#include "support/fixtures.h"

#include <cstdlib>
#include <filesystem>

namespace attnscope::testing {

std::string fixtures_dir() {
  const char* env = std::getenv("ATTNSCOPE_FIXTURES");
  if (env == nullptr || *env == '\0') return "";
  std::error_code ec;
  if (!std::filesystem::is_directory(env, ec)) return "";
  return env;
}

std::string fixture_path(const std::string& relative) {
  return (std::filesystem::path(fixtures_dir()) / relative).string();
}

bool in_ci() {
  const char* env = std::getenv("CI");
  return env != nullptr && std::string(env) == "true";
}

}  // namespace attnscope::testing
