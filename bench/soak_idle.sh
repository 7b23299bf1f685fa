#!/usr/bin/env bash
# The soak's other end: a coordinator that sits idle past its retention.
# Runs JOBS jobs of 100,000 echo tasks (`qfarm map --repeat`) through a
# journaled coordinator (--retain-finished=5s) and 2 async workers, then
# prints its VmRSS, journal.db and journal.db-wal sizes and open fds while
# it idles 30 s, kill -9s it, times a restart on the same data dir (exec to
# its listening line), and counts what the journal holds.
#
#   bench/soak_idle.sh [JOBS]        (default 30)
#
# Environment: BIN_DIR (default build/bin). Needs sqlite3 for the last
# lines. Every process it starts it stops by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/build/bin}"
JOBS="${1:-30}"
DIR="$(mktemp -d /tmp/qfarm-soak-idle.XXXXXX)"
PIDS=()  # workers
COORD=""
cleanup() {
  if [ -n "$COORD" ]; then kill -9 "$COORD" 2>/dev/null || true; fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

FLAGS=(--listen=127.0.0.1:0 "--data-dir=$DIR/data" --retain-finished=5s
  --max-queued=1000000 --max-tasks-per-job=1000000)

start_coordinator() {  # OUT_FILE: starts it, sets COORD; waits for listening
  "$BIN_DIR/qfarm-coordinator" "${FLAGS[@]}" >"$1" 2>>"$DIR/coordinator.log" &
  COORD=$!
  for _ in $(seq 6000); do
    grep -q "listening on" "$1" && return 0
    sleep 0.005
  done
  echo "qfarm-coordinator did not start; see $DIR" >&2
  exit 1
}
journal() {
  echo "journal.db $(stat -c %s "$DIR/data/journal.db" 2>/dev/null || echo 0)" \
    "wal $(stat -c %s "$DIR/data/journal.db-wal" 2>/dev/null || echo 0)"
}
state() {  # PID: RSS, journal, fds
  echo "$(grep VmRSS "/proc/$1/status" | tr -s ' \t' ' '), $(journal)," \
    "$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l) fds"
}

start_coordinator "$DIR/out"
ADDRESS="$(sed -n 's/^qfarm-coordinator listening on //p' "$DIR/out")"
for i in 1 2; do
  "$BIN_DIR/qfarm-worker" "--coordinator=$ADDRESS" --mode=async --slots=10000 \
    "--id=worker-$i" 2>>"$DIR/worker-$i.log" &
  PIDS+=("$!")
done
start=$(date +%s.%N)
for _ in $(seq "$JOBS"); do
  "$BIN_DIR/qfarm" "--coordinator=$ADDRESS" map --repeat=100000 echo:x \
    >/dev/null 2>>"$DIR/map.log"
done
echo "after $JOBS jobs ($(echo "$(date +%s.%N) - $start" | bc) s): $(state "$COORD")"
waited=0
for s in 2 5 10 20 30; do
  sleep $((s - waited))
  waited=$s
  echo "idle ${s}s: $(state "$COORD")"
done
kill -9 "$COORD"
wait "$COORD" 2>/dev/null || true
COORD=""
start=$(date +%s.%N)
start_coordinator "$DIR/out2"
echo "restart after kill -9: $(echo "$(date +%s.%N) - $start" | bc) s to" \
  "listening; then $(state "$COORD")"
kill "$COORD"
wait "$COORD" 2>/dev/null || true
COORD=""
if command -v sqlite3 >/dev/null; then
  echo "after a clean stop: $(journal); rows:" \
    "$(sqlite3 "$DIR/data/journal.db" "select 'log', count(*) from log;
      select 'released', count(*) from released;" | tr '\n' ' ')"
fi
