#!/usr/bin/env bash
# Installs the Debian 12 packages qfarm builds and tests with. Idempotent:
# does nothing when they are all present. Needs root (or sudo) otherwise.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache clang-format clang-tidy
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libasio-dev prometheus-cpp-dev libcurl4-openssl-dev openssl libsqlite3-dev zlib1g-dev
  # The standard google/rpc/status.proto, of which proto/ holds a copy.
  golang-github-gogo-googleapis-dev
  # Fuzzing (scripts/fuzz.sh): clang with libFuzzer and its sanitizer
  # runtimes (only recommended by clang, so named), llvm for llvm-symbolizer.
  clang libclang-rt-14-dev llvm
  # `qfarm bench --python`: the seed's own methods, uvloop among them.
  python3 python3-uvloop
  # The Python worker (worker/python/): gRPC, protobuf, stubs from proto/.
  python3-grpcio python3-protobuf python3-grpc-tools
)

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
