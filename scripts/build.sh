#!/usr/bin/env bash
# Configures and builds qfarm into BUILD_DIR (default: build/), with ccache
# and warnings as errors. Extra arguments go to cmake. TARGETS (a space-
# separated list) builds only those targets; default: everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
# Paths relative to the checkout in ccache's keys: builds of the same source
# in other checkouts, and in the image's build stage (/src), share objects.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=true
if [ ! -f "$BUILD_DIR/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DQFARM_WERROR=ON "$@" >/dev/null
fi
# shellcheck disable=SC2086  # TARGETS is a list.
cmake --build "$BUILD_DIR" ${TARGETS:+--target $TARGETS}
