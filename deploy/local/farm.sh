#!/usr/bin/env bash
# A local farm on this machine: one coordinator and workers of chosen modes.
#
#   deploy/local/farm.sh start DIR WORKER...   start; print the address
#   deploy/local/farm.sh stop DIR              stop what DIR's start started
#
# WORKER is MODE[xCOUNT][:SLOTS]: serialx3 (three serial workers, the seed's
# process pool of 3), thread:10 (one worker with 10 threads), asyncx2:1000.
# DIR keeps the PIDs, logs and address. Only those PIDs are ever signalled.
# Environment: BIN_DIR (default build/bin), LISTEN (default 127.0.0.1:0).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/build/bin}"

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

start() {
  local dir="$1"; shift
  [ $# -gt 0 ] || usage
  mkdir -p "$dir"
  : > "$dir/pids"
  "$BIN_DIR/qfarm-coordinator" --listen="${LISTEN:-127.0.0.1:0}" \
    --data-dir="$dir/data" \
    > "$dir/coordinator.out" 2> "$dir/coordinator.log" < /dev/null &
  echo "$!" >> "$dir/pids"
  local address=""
  for _ in $(seq 200); do
    address="$(sed -n 's/^qfarm-coordinator listening on //p' "$dir/coordinator.out")"
    [ -n "$address" ] && break
    if ! kill -0 "$(head -1 "$dir/pids")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ -z "$address" ]; then
    echo "farm.sh: the coordinator did not start; see $dir/coordinator.log" >&2
    cat "$dir/coordinator.log" >&2
    stop "$dir"
    exit 1
  fi
  echo "$address" > "$dir/address"
  local total=0 n=0
  for spec in "$@"; do
    local mode="${spec%%[x:]*}" count=1 slots=""
    [[ "$spec" =~ x([0-9]+) ]] && count="${BASH_REMATCH[1]}"
    [[ "$spec" =~ :([0-9]+) ]] && slots="${BASH_REMATCH[1]}"
    case "$mode" in serial|thread|async) ;; *)
      echo "farm.sh: bad worker \"$spec\" (expected MODE[xCOUNT][:SLOTS])" >&2
      stop "$dir"; exit 2 ;;
    esac
    for _ in $(seq "$count"); do
      n=$((n + 1))
      "$BIN_DIR/qfarm-worker" --coordinator="$address" --mode="$mode" \
        ${slots:+--slots="$slots"} --id="worker-$n" \
        < /dev/null > "$dir/worker-$n.out" 2> "$dir/worker-$n.log" &
      echo "$!" >> "$dir/pids"
      total=$((total + 1))
    done
  done
  # Healthy when the coordinator lists every worker.
  for _ in $(seq 300); do
    local listed
    listed="$("$BIN_DIR/qfarm" --coordinator="$address" workers 2>/dev/null \
      | tail -n +2 | wc -l)"
    if [ "$listed" -ge "$total" ]; then
      echo "$address"
      return 0
    fi
    sleep 0.1
  done
  echo "farm.sh: only $listed of $total workers connected; logs in $dir" >&2
  stop "$dir"
  exit 1
}

stop() {
  local dir="$1"
  [ -f "$dir/pids" ] || return 0
  # Workers first (they drain), the coordinator (first line) last.
  local pids coordinator
  coordinator="$(head -1 "$dir/pids")"
  pids="$(tail -n +2 "$dir/pids")"
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $pids; do wait_pid "$pid"; done
  kill -TERM "$coordinator" 2>/dev/null || true
  wait_pid "$coordinator"
  rm -f "$dir/pids"
}

# Waits up to 30 s for a PID to exit, then kills it.
wait_pid() {
  for _ in $(seq 300); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
}

case "${1:-}" in
  start) shift; [ $# -ge 1 ] || usage; start "$@" ;;
  stop) shift; [ $# -eq 1 ] || usage; stop "$1" ;;
  *) usage ;;
esac
