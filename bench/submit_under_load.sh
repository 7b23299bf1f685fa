#!/usr/bin/env bash
# The round trip of one small task while 1M-task jobs are being submitted
# (issue 13: no heavy work under the scheduler's lock). Starts a journaled
# coordinator (--journal-sync=full, as in production) and one async worker
# on a free port, runs `qfarm bench --workload=latency` against it once on
# its own and once while another client submits JOBS jobs of TASKS echo
# tasks one after the other, and prints each run's round trip p50 and p99
# as JSON Lines. Stops
# what it started by PID.
#
#   bench/submit_under_load.sh            (BIN_DIR: default build/bin)
#
# Environment: BIN_DIR, JOBS (default 3), TASKS (default 1000000),
# COORDINATOR (another qfarm-coordinator binary, e.g. an earlier build's,
# to compare), RETAIN (its retention flag; empty for a build without one).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/build/bin}"
JOBS="${JOBS:-3}"
TASKS="${TASKS:-1000000}"
WORK=$(mktemp -d /tmp/qfarm-submit-load.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"${COORDINATOR:-$BIN_DIR/qfarm-coordinator}" --listen=127.0.0.1:0 --data-dir="$WORK/data" \
  ${RETAIN---retain-finished=5s} --max-queued=10000000 >"$WORK/coordinator.out" 2>"$WORK/coordinator.err" &
PIDS+=($!)
for _ in $(seq 100); do
  grep -q 'listening on' "$WORK/coordinator.out" 2>/dev/null && break
  sleep 0.1
done
ADDRESS=$(grep -o 'listening on [^ ]*' "$WORK/coordinator.out" | cut -d' ' -f3)
[ -n "$ADDRESS" ] || { cat "$WORK/coordinator.err"; exit 1; }
"$BIN_DIR/qfarm-worker" --coordinator="$ADDRESS" --mode=async --slots=64 \
  --id=worker-1 2>"$WORK/worker.err" &
PIDS+=($!)
for _ in $(seq 100); do
  [ "$("$BIN_DIR/qfarm" --coordinator="$ADDRESS" workers | wc -l)" -ge 2 ] &&
    break
  sleep 0.1
done

latency() {  # LABEL
  "$BIN_DIR/qfarm" bench --workload=latency --coordinator="$ADDRESS" \
    --methods=farm:async --output=json 2>/dev/null | python3 -c '
import json, sys
for row in json.load(sys.stdin)["rows"]:
    print(json.dumps({"load": sys.argv[1], "tasks": row["tasks"],
                      "ok": row["ok"], "p50_us": row["latency_p50_us"],
                      "p99_us": row["latency_p99_us"]}))' "$1"
}

latency quiet
(
  for _ in $(seq "$JOBS"); do
    "$BIN_DIR/qfarm" --coordinator="$ADDRESS" submit \
      --repeat="$TASKS" echo:x >/dev/null
  done
) &
SUBMITTER=$!
PIDS+=("$SUBMITTER")
latency "submitting ${JOBS}x${TASKS}"
wait "$SUBMITTER"
