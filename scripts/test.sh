#!/usr/bin/env bash
# The test suite: a Release build and an AddressSanitizer + UndefinedBehaviorSanitizer
# build, each running every GoogleTest binary through ctest (the Release tests run with
# the best kernels this CPU has, with ATTNSCOPE_CPU=scalar, the portable reference
# kernels, as on a CPU without AVX2, and, on an AVX-512 CPU, with ATTNSCOPE_CPU=avx2, so
# that the fixtures check every dispatch path); then the viewer's tests with
# node: the unit tests (tests/web/unit) and the browser tests (tests/web/e2e: Debian's
# chromium driven by playwright-core from package.json, against the Release build's CLI).
# Tests that need the reference fixtures read ATTNSCOPE_FIXTURES (default:
# ../shared/fixtures beside the repository); without them they skip, except under
# CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
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
echo "test: [release, scalar kernels] running with ATTNSCOPE_CPU=scalar"
ATTNSCOPE_CPU=scalar ctest --test-dir build -j"$jobs" --output-on-failure
if grep -qw avx512_vnni /proc/cpuinfo 2>/dev/null && grep -qw avx2 /proc/cpuinfo; then
  echo "test: [release, AVX2 kernels] running with ATTNSCOPE_CPU=avx2"
  ATTNSCOPE_CPU=avx2 ctest --test-dir build -j"$jobs" --output-on-failure
fi
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite sanitizers build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNSCOPE_SANITIZE=ON
echo "test: C++ suites passed"

# ---- the viewer (web/): node --test; the output ends with node's summary lines ----
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "test: [web] node and npm are required (scripts/install-deps.sh installs them)" >&2
    exit 1
  fi
  echo "test: [web] skipped: node or npm not found (scripts/install-deps.sh installs them)"
  exit 0
fi
# npm ci only when node_modules is missing or older than package.json / package-lock.json
# (npm ci writes node_modules/.package-lock.json last).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
   [ package.json -nt node_modules/.package-lock.json ]; then
  echo "test: [web] npm ci"
  npm ci --no-audit --no-fund
fi
# The unit tests map the bare specifiers attnscope/* to web/*: with module.register()
# (Node >= 20.6, and >= 18.19) through tests/web/unit/register.mjs, else with the same
# resolve hook given to --experimental-loader.
if node -e "process.exit(typeof require('node:module').register === 'function' ? 0 : 1)"; then
  unit_loader=(--import ./tests/web/unit/register.mjs)
else
  loader_dir=$(mktemp -d)
  trap 'rm -rf "$loader_dir"' EXIT
  web_url=$(node -e "console.log(JSON.stringify(require('node:url').pathToFileURL(process.argv[1]).href + '/'))" "$PWD/web")
  cat > "$loader_dir/loader.mjs" <<LOADER
const WEB = $web_url;
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('attnscope/')) {
    return { url: new URL(specifier.slice('attnscope/'.length), WEB).href, shortCircuit: true };
  }
  return next(specifier, context);
}
LOADER
  unit_loader=(--experimental-loader "$loader_dir/loader.mjs")
fi
echo "test: [web] node $(node --version): unit tests"
status=0
node "${unit_loader[@]}" --test tests/web/unit/ || status=1
echo "test: [web] browser tests (chromium: ${ATTNSCOPE_CHROMIUM:-/usr/bin/chromium})"
node --test tests/web/e2e/ || status=1
exit $status
