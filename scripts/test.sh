#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with ctest.
#   scripts/test.sh                 all tests
#   scripts/test.sh -R FarmTest     ctest arguments pass through
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export GRPC_DNS_RESOLVER=native
BUILD_DIR="${BUILD_DIR:-build}" scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 300 -j "$(nproc)" "$@"
