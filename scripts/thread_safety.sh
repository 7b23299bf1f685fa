#!/usr/bin/env bash
# Builds qfarm's libraries and binaries (not the tests) with clang and
# -Wthread-safety -Werror into build-tsa: clang checks the lock annotations
# (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED, ...) that GCC ignores.
# Ends with "thread-safety: 1 passed, 0 failed" (or 0 passed, 1 failed).
#   scripts/thread_safety.sh
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=build-tsa
TARGETS=(qfarm qfarm-coordinator qfarm-worker qfarm-bench
  qfarm-http-test-server)
# ccache hits across checkouts (CI builds a fresh clone elsewhere).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=true

t0=$(date +%s)
rc=0
cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DQFARM_THREAD_SAFETY=ON >/dev/null || rc=1
if [ "$rc" = 0 ]; then
  # -k 0: every finding in one run.
  cmake --build "$DIR" -j "${JOBS:-2}" --target "${TARGETS[@]}" -- -k 0 ||
    rc=1
fi
echo "thread-safety: clang build took $(($(date +%s) - t0)) s"
if [ "$rc" = 0 ]; then
  echo "thread-safety: 1 passed, 0 failed"
else
  echo "thread-safety: 0 passed, 1 failed"
fi
exit "$rc"
