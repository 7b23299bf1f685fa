#!/usr/bin/env bash
# The chaos loop: kills and freezes workers (every mode) and the coordinator
# at random points while jobs run, and checks every result at the wire
# (tests/chaos_harness.h): nothing lost, nothing duplicated, every value
# right, and every process stops cleanly. Builds what it needs first.
#   scripts/chaos.sh                      2 minutes (what CI runs)
#   scripts/chaos.sh --minutes=30         longer
#   scripts/chaos.sh --seed=S --iterations=1   replay one failed iteration
# Arguments go to qfarm-chaos (--seconds, --minutes, --iterations, --seed,
# --keep-logs). Its last line is "chaos: N iterations passed, F failed".
# Ctrl-C stops it after the iteration in progress.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export GRPC_DNS_RESOLVER=native
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=true
BUILD_DIR="${BUILD_DIR:-build}"
TARGETS=qfarm-chaos BUILD_DIR="$BUILD_DIR" scripts/build.sh
exec "$BUILD_DIR/bin/qfarm-chaos" "$@"
