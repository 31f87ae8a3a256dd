#!/usr/bin/env bash
# The test suite: a Release build and an AddressSanitizer + UndefinedBehaviorSanitizer
# build, each running every GoogleTest binary through ctest.
# Tests that need the reference fixtures read ATTNSCOPE_FIXTURES (default:
# ../shared/fixtures beside the repository); without them they skip, except under
# CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
if [ -z "${ATTNSCOPE_FIXTURES:-}" ] && [ -d ../shared/fixtures ]; then
  ATTNSCOPE_FIXTURES=$(cd ../shared/fixtures && pwd)
fi
export ATTNSCOPE_FIXTURES="${ATTNSCOPE_FIXTURES:-}"
echo "test: fixtures: ${ATTNSCOPE_FIXTURES:-(none; fixture tests will skip)}"

run_suite() {  # name build-dir cmake-args...
  local name=$1 dir=$2
  shift 2
  echo "test: [$name] building in $dir"
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "test: [$name] running"
  ctest --test-dir "$dir" -j"$jobs" --output-on-failure
}

run_suite release build -DCMAKE_BUILD_TYPE=Release
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite sanitizers build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNSCOPE_SANITIZE=ON
echo "test: all suites passed"
