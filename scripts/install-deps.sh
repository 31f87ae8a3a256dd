#!/usr/bin/env bash
# Installs attnscope's dependencies from Debian 12's packages: what the build needs, and
# with --tests also what the test suite needs (numpy for the Python export check,
# chromium, Node.js and npm for the viewer's tests).
# Runs apt-get as root, or through sudo for an ordinary user.
#   scripts/install-deps.sh [--tests]
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libfmt-dev nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev libzstd-dev libxxhash-dev
  libcpp-httplib-dev
  libgtest-dev libgmock-dev
)
if [ "${1:-}" = "--tests" ]; then
  packages+=(python3 python3-numpy chromium)
  # Node.js and npm (package.json; Node 18 or newer): Debian's nodejs and npm unless a
  # node and an npm are already on PATH (NodeSource's nodejs bundles npm and conflicts
  # with Debian's npm package).
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
elif [ -n "${1:-}" ]; then
  echo "usage: scripts/install-deps.sh [--tests]" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
