#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with ctest; then the
# chaos loop (scripts/chaos.sh: workers and the coordinator killed and frozen
# at random points, every result checked at the wire), the container image
# and the farm in containers (scripts/image.sh, tests/container_test.sh), the
# sanitizer builds (scripts/sanitize.sh: ASan+UBSan over the whole suite, TSan
# over the unit, gRPC service, farm, session, security and client tests),
# clang's check of the lock annotations (scripts/thread_safety.sh, stage
# "tsa") and a bounded fuzz run (scripts/fuzz.sh).
#   scripts/test.sh                 everything: what CI runs
#   scripts/test.sh -R FarmTest     ctest arguments pass through; with them
#                                   only the normal build's tests run
# QFARM_SANITIZERS=1|0 and QFARM_CONTAINERS=1|0 run or skip the sanitizer
# stages and the container stage (default: 1 without ctest arguments, 0
# with); QFARM_THREAD_SAFETY=1|0 the clang stage (default: as the
# sanitizers); QFARM_FUZZ_SECONDS is each fuzzer's time (default 20; 0 skips
# fuzzing); QFARM_CHAOS_SECONDS the chaos loop's (default 120; 0 skips it).
# With ctest arguments, fuzzing and chaos are skipped unless their variable
# is set.
# Every stage runs even when an earlier one failed. The last line is one
# ctest-style summary over all stages (fuzzers count as one test each): CI
# reads it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export GRPC_DNS_RESOLVER=native
# ccache hits across checkouts (CI builds a fresh clone elsewhere).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=true
BUILD_DIR="${BUILD_DIR:-build}" scripts/build.sh

if [ $# -gt 0 ]; then
  SANITIZERS="${QFARM_SANITIZERS:-0}"
  CONTAINERS="${QFARM_CONTAINERS:-0}"
else
  SANITIZERS="${QFARM_SANITIZERS:-1}"
  CONTAINERS="${QFARM_CONTAINERS:-1}"
fi
FUZZ_SECONDS="${QFARM_FUZZ_SECONDS:-20}"
if [ $# -gt 0 ] && [ -z "${QFARM_FUZZ_SECONDS:-}" ]; then FUZZ_SECONDS=0; fi
CHAOS_SECONDS="${QFARM_CHAOS_SECONDS:-120}"
if [ $# -gt 0 ] && [ -z "${QFARM_CHAOS_SECONDS:-}" ]; then CHAOS_SECONDS=0; fi

LOGS=$(mktemp -d /tmp/qfarm-test.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT
STAGES=()

# Runs one stage, shows its output and keeps it for the summary.
stage() {  # NAME COMMAND...
  local name=$1 start rc
  shift
  start=$(date +%s)
  echo "=== $name: $*"
  set +e
  "$@" 2>&1 | tee "$LOGS/$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  echo "=== $name: exit $rc after $(($(date +%s) - start)) s"
  echo "$rc" >"$LOGS/$name.rc"
  echo "$(($(date +%s) - start))" >"$LOGS/$name.secs"
  STAGES+=("$name")
}

stage tests ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure \
  --timeout 300 -j "$(nproc)" "$@"
if [ "$CHAOS_SECONDS" != 0 ]; then
  stage chaos scripts/chaos.sh --seconds="$CHAOS_SECONDS"
fi
# The image, built after the host's build so that its compile is ccache
# hits, and the farm run in its containers by the host's qfarm.
containers() {
  scripts/image.sh qfarm:dev &&
    BIN_DIR="${BUILD_DIR:-build}/bin" tests/container_test.sh qfarm:dev
}
if [ "$CONTAINERS" = 1 ]; then
  stage container containers
fi
if [ "$SANITIZERS" = 1 ]; then
  stage asan scripts/sanitize.sh asan "$@"
  stage tsan scripts/sanitize.sh tsan "$@"
fi
if [ "${QFARM_THREAD_SAFETY:-$SANITIZERS}" = 1 ]; then
  stage tsa scripts/thread_safety.sh
fi
if [ "$FUZZ_SECONDS" != 0 ]; then
  stage fuzz scripts/fuzz.sh "$FUZZ_SECONDS"
fi

# One line per stage with its time, then the total. A stage that failed
# without a ctest summary (a build error, say) counts as one failed test;
# fuzzers and chaos iterations count as one test each.
echo
echo "=== summary"
total=0
failed=0
for name in "${STAGES[@]}"; do
  rc=$(cat "$LOGS/$name.rc")
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' \
    "$LOGS/$name.log" | tail -n 1 || true)
  fuzz=$(grep -E '^fuzz: [0-9]+ fuzzers passed, [0-9]+ failed' \
    "$LOGS/$name.log" | tail -n 1 || true)
  chaos=$(grep -E '^chaos: [0-9]+ iterations passed, [0-9]+ failed' \
    "$LOGS/$name.log" | tail -n 1 || true)
  # A script's own count: "NAME: N passed, N failed".
  plain=$(grep -E '^[a-z_-]+: [0-9]+ passed, [0-9]+ failed$' \
    "$LOGS/$name.log" | tail -n 1 || true)
  if [ -n "$line" ]; then
    f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    n=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  elif [ -n "$fuzz" ]; then
    p=$(sed -E 's/^fuzz: ([0-9]+) fuzzers passed, ([0-9]+) failed.*/\1/' <<<"$fuzz")
    f=$(sed -E 's/^fuzz: ([0-9]+) fuzzers passed, ([0-9]+) failed.*/\2/' <<<"$fuzz")
    n=$((p + f))
  elif [ -n "$chaos" ]; then
    p=$(sed -E 's/^chaos: ([0-9]+) iterations passed, ([0-9]+) failed.*/\1/' <<<"$chaos")
    f=$(sed -E 's/^chaos: ([0-9]+) iterations passed, ([0-9]+) failed.*/\2/' <<<"$chaos")
    n=$((p + f))
  elif [ -n "$plain" ]; then
    p=$(sed -E 's/^[a-z_-]+: ([0-9]+) passed, ([0-9]+) failed$/\1/' <<<"$plain")
    f=$(sed -E 's/^[a-z_-]+: ([0-9]+) passed, ([0-9]+) failed$/\2/' <<<"$plain")
    n=$((p + f))
  else
    f=0
    n=0
  fi
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    f=1
    n=$((n + 1))
  fi
  printf '  %-6s %5d tests, %3d failed (exit %s, %s s)\n' "$name" "$n" "$f" \
    "$rc" "$(cat "$LOGS/$name.secs")"
  total=$((total + n))
  failed=$((failed + f))
done
if [ "$total" -gt 0 ]; then
  pct=$(((total - failed) * 100 / total))
else
  pct=0
fi
echo "${pct}% tests passed, ${failed} tests failed out of ${total}"
[ "$failed" -eq 0 ]
