#!/usr/bin/env bash
# Installs the Debian 12 packages qfarm builds and tests with. Idempotent:
# does nothing when they are all present. Needs root (or sudo) otherwise.
#   scripts/install-deps.sh              everything: build, tests, tools
#   scripts/install-deps.sh --build      what compiling qfarm needs (the
#                                        image's build stage, deploy/Dockerfile)
#   scripts/install-deps.sh --only PKG...  these packages (scripts/image.sh)
set -euo pipefail

# What `cmake` and `cmake --build` need: the compiler, and every package
# the CMakeLists find.
BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libasio-dev prometheus-cpp-dev libcurl4-openssl-dev libsqlite3-dev zlib1g-dev
)
# Tests and tools around the build.
TOOL_PACKAGES=(
  clang-format clang-tidy openssl
  # The standard google/rpc/status.proto, of which proto/ holds a copy
  # (checked against it by the test StatusProtoIsDebians).
  golang-github-gogo-googleapis-dev
  # Fuzzing (scripts/fuzz.sh): clang with libFuzzer and its sanitizer
  # runtimes (only recommended by clang, so named), llvm for llvm-symbolizer.
  clang libclang-rt-14-dev llvm
  # `qfarm bench --python`: the seed's own methods, uvloop among them.
  python3 python3-uvloop
  # The Python worker (worker/python/): gRPC, protobuf, stubs from proto/.
  python3-grpcio python3-protobuf python3-grpc-tools
  # tests/container_test.sh reads the rendered manifests and the results.
  python3-yaml jq
)

if [ "${1:-}" = "--build" ]; then
  PACKAGES=("${BUILD_PACKAGES[@]}")
elif [ "${1:-}" = "--only" ]; then
  shift
  PACKAGES=("$@")
else
  PACKAGES=("${BUILD_PACKAGES[@]}" "${TOOL_PACKAGES[@]}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
# --no-install-recommends: libasio-dev would otherwise pull 163 MB of Boost.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
  --no-install-recommends "${missing[@]}" >/dev/null
