#!/usr/bin/env bash
# The seed experiment on qfarm, from a fresh machine: installs what is
# missing, builds, starts coordinators and workers, runs the seed's pool
# example and its 10 x sleep(1) comparison in every mode, prints the table,
# and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

scripts/install-deps.sh
echo "== building (first time: a few minutes)"
BUILD_DIR=build scripts/build.sh >/dev/null
BIN="$ROOT/build/bin"
QFARM="$BIN/qfarm"
STATE="$(mktemp -d /tmp/qfarm-demo.XXXXXX)"
cleanup() {
  for d in "$STATE"/*/; do [ -d "$d" ] && deploy/local/farm.sh stop "$d"; done
  rm -rf "$STATE"
}
trap cleanup EXIT

farm() {  # farm NAME WORKER... -> prints the address
  BIN_DIR="$BIN" deploy/local/farm.sh start "$STATE/$1" "${@:2}"
}
unfarm() { deploy/local/farm.sh stop "$STATE/$1"; }

seed_pool_example() {  # NAME TITLE WORKER...
  local name="$1" title="$2"; shift 2
  local address
  address="$(farm "$name" "$@")"
  echo
  echo "== $title ($*)"
  local job
  job="$("$QFARM" --coordinator="$address" submit sleep:3s)"
  "$QFARM" --coordinator="$address" watch "$job" 2>&1 \
    | sed 's/^/  single task: /'
  echo "  ------------------------------"
  "$QFARM" --coordinator="$address" map sleep:1s sleep:3s sleep:5s 2>&1 \
    | sed 's/^/  several tasks: /'
  unfarm "$name"
}

echo
echo "== The seed's pool example: submit(action, 3), then map(action, [1, 3, 5])"
echo "   on 3 slots. Each line: index, status, executor, value (ms slept)."
seed_pool_example procs "process pool: 3 serial worker processes" serialx3
seed_pool_example threads "thread pool: 1 worker, 3 threads" thread:3
seed_pool_example loop "event loop: 1 worker, async, 3 in flight" async:3

TEN=(sleep:1s --repeat=10)
declare -a ROWS
run_row() {  # LABEL QFARM-ARGS...
  local label="$1"; shift
  local out elapsed executors
  out="$("$QFARM" "$@" map "${TEN[@]}" 2>&1)"
  elapsed="$(sed -n 's/.* in \([0-9.]*\) s .*/\1/p' <<<"$out")"
  executors="$(grep -E '^ *[0-9]+  ok' <<<"$out" | awk '{print $3}' \
    | sort -u | tr '\n' ' ')"
  printf '  %-38s %8s s   %s\n' "$label" "$elapsed" "$executors"
  ROWS+=("$(printf '%-38s %8s s' "$label" "$elapsed")")
}

echo
echo "== 10 queries of sleep(1), every way (ideal: 1 s with 10 slots)"
echo "   method                             elapsed   executors that ran them"
run_row "local serial (sequential loop)" --local --mode=serial
run_row "local thread pool, 10 threads" --local --mode=thread --slots=10
run_row "local async loop" --local --mode=async
addr="$(farm seq serial)"
run_row "farm: 1 serial worker" --coordinator="$addr"
unfarm seq
addr="$(farm procs10 serialx10)"
run_row "farm: 10 serial workers (processes)" --coordinator="$addr"
unfarm procs10
addr="$(farm procs2 serialx2)"
run_row "farm: 2 serial workers (=cores)" --coordinator="$addr"
unfarm procs2
addr="$(farm threads thread:10)"
run_row "farm: 1 thread worker, 10 threads" --coordinator="$addr"
unfarm threads
addr="$(farm async async)"
run_row "farm: 1 async worker" --coordinator="$addr"
unfarm async

echo
echo "== Summary: 10 x sleep(1)"
printf '  %s\n' "${ROWS[@]}"
