#!/usr/bin/env bash
# What the progress line of `qfarm map` costs: 1M `echo` tasks with
# --progress=always and --progress=never, alternating which goes first, on
# the local async pool and through a farm (a coordinator and two async
# workers it starts on a free port and stops by PID). Prints each run's
# wall time and, per method, the medians and their ratio (always / never).
#
#   bench/progress_overhead.sh [ROUNDS]      (default 5)
#
# Environment: BIN_DIR (default build/bin), TASKS (default 1000000).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/build/bin}"
ROUNDS="${1:-5}"
TASKS="${TASKS:-1000000}"
WORK=$(mktemp -d /tmp/qfarm-progress.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN_DIR/qfarm-coordinator" --listen=127.0.0.1:0 --ephemeral \
  >"$WORK/coordinator.out" 2>"$WORK/coordinator.err" &
PIDS+=($!)
for _ in $(seq 100); do
  grep -q 'listening on' "$WORK/coordinator.out" 2>/dev/null && break
  sleep 0.1
done
ADDRESS=$(grep -o 'listening on [^ ]*' "$WORK/coordinator.out" | cut -d' ' -f3)
[ -n "$ADDRESS" ] || { cat "$WORK/coordinator.err"; exit 1; }
for i in 1 2; do
  "$BIN_DIR/qfarm-worker" --coordinator="$ADDRESS" --mode=async \
    --id="worker-$i" 2>"$WORK/worker-$i.err" &
  PIDS+=($!)
done
for _ in $(seq 100); do
  [ "$("$BIN_DIR/qfarm" --coordinator="$ADDRESS" workers | wc -l)" -ge 3 ] &&
    break
  sleep 0.1
done

# One run: prints its wall seconds; stderr (with any progress bytes) to a
# file, as a redirected terminal would not, so --progress=always draws.
run() {  # METHOD PROGRESS
  local where=(--coordinator="$ADDRESS")
  [ "$1" = local ] && where=(--local --mode=async)
  local start end
  start=$(date +%s.%N)
  "$BIN_DIR/qfarm" map "${where[@]}" --progress="$2" --repeat="$TASKS" \
    echo:x >/dev/null 2>"$WORK/err"
  end=$(date +%s.%N)
  grep -q "$TASKS tasks: $TASKS ok" "$WORK/err" ||
    { echo "a run failed: $(tail -c 300 "$WORK/err")" >&2; exit 1; }
  awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for method in local farm; do
  : >"$WORK/always" && : >"$WORK/never"
  for round in $(seq "$ROUNDS"); do
    order=(always never)
    [ $((round % 2)) = 0 ] && order=(never always)
    for progress in "${order[@]}"; do
      t=$(run "$method" "$progress")
      printf '%s %-6s round %d: %.3f s\n' "$method" "$progress" "$round" "$t"
      echo "$t" >>"$WORK/$progress"
    done
  done
  always=$(median <"$WORK/always")
  never=$(median <"$WORK/never")
  printf '%s: median %.3f s with the line, %.3f s without: %.3f\n' \
    "$method" "$always" "$never" "$(awk -v a="$always" -v b="$never" 'BEGIN { print a / b }')"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
