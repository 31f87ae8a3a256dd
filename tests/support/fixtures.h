// Locating the shared reference fixtures (../shared/fixtures, see its README).
// Tests read the path from ATTNSCOPE_FIXTURES. When it is unset or missing, tests
// that need fixtures are skipped with a message, except under CI=true, where they fail.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace attnscope::testing {

// The fixtures directory, or "" when not available.
std::string fixtures_dir();

// Path of a file under the fixtures directory.
std::string fixture_path(const std::string& relative);

// True when running under CI (CI=true), where missing fixtures are a failure.
bool in_ci();

}  // namespace attnscope::testing

// Use at the top of a test that needs the fixtures.
#define ATTN_REQUIRE_FIXTURES()                                                          \
  do {                                                                                   \
    if (::attnscope::testing::fixtures_dir().empty()) {                                  \
      if (::attnscope::testing::in_ci()) {                                               \
        FAIL() << "ATTNSCOPE_FIXTURES is unset or missing, and CI=true requires it";     \
      } else {                                                                           \
        GTEST_SKIP() << "reference fixtures not found: set ATTNSCOPE_FIXTURES to "       \
                        "../shared/fixtures";                                            \
      }                                                                                  \
    }                                                                                    \
  } while (0)
