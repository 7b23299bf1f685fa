#!/usr/bin/env bash
# Runs every `qfarm bench` comparison and microbenchmark that
# docs/BENCHMARKS.md quotes, and keeps the tables (NAME.txt) and the
# charts (NAME.svg) in OUT_DIR.
#
#   bench/record.sh [OUT_DIR]        (default: bench-results)
#
# Environment: BIN_DIR (default build/bin). Takes about 16 minutes on two
# cores. Every farm it needs it starts and stops itself.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/build/bin}"
OUT="${1:-bench-results}"
mkdir -p "$OUT"
QFARM="$BIN_DIR/qfarm"

run() {  # NAME ARGS...: the table on stdout and in NAME.txt, JSON and SVG
  local name="$1"; shift
  echo "== $name: qfarm bench $*" | tee "$OUT/$name.txt"
  "$QFARM" bench "$@" --chart="$OUT/$name.svg" | tee -a "$OUT/$name.txt"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/$name.txt"
}

# The seed's question, every way, beside the seed's own Python methods.
run seed --workload=seed --python --runs=3
# 100,000 sleeps at once: the event loop against threads and processes.
run scale --workload=scale --tasks=100000 --python --runs=3 \
  --methods=local:async,local:auto,local:thread,farm:asyncx1,farm:autox1,farm:threadx1
# Tiny tasks: the overhead of every method.
run echo --workload=echo --python --runs=3
# The figures of issue 4.
run echo-local --workload=echo --tasks=1000000 --runs=5 \
  --methods=local:async,local:thread
run echo-farm --workload=echo --tasks=1000000 --runs=5 --methods=farm:asyncx2
run latency --workload=latency --python --runs=3 \
  --methods=local:async,local:thread,farm:asyncx1,farm:threadx1
run queue --workload=queue --tasks=1000000 --runs=3
# Real query kinds.
run cpu --workload=cpu --python --runs=3
run http --workload=http --python --runs=3
run mixed --workload=mixed --python --runs=3
# Durable: the coordinator journals every job and result.
run echo-journal --workload=echo --tasks=200000 --runs=3 --journal \
  --methods=farm:asyncx2

# A coordinator that runs for months: RSS, journal and fds job after job,
# and the restart after kill -9 (docs/BENCHMARKS.md, "Soak").
run soak --workload=soak --jobs=200 --tasks=100000

for micro in scheduler_bench executor_bench proto_bench; do
  echo "== $micro" | tee "$OUT/$micro.txt"
  "$BIN_DIR/$micro" 2>&1 | grep -v "built as DEBUG" | tee -a "$OUT/$micro.txt"
done

# Threads past a thousand: what 10,000 of them cost (last: the machine's
# load average stays high for a while after).
run scale-threads --workload=scale --tasks=100000 --slots=10000 \
  --methods=local:thread,py:thread
