#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan into
# build-fuzz, then runs each for SECONDS (default 30) on a copy of its corpus
# (fuzz/corpus/<target>/), so the repository is not modified. Fails on a
# crash, a broken check, a leak, a timeout or any sanitizer report; the
# failing input is kept and its path printed.
#   scripts/fuzz.sh [SECONDS]                   what CI runs
#   scripts/fuzz.sh --merge SECONDS [TARGET...] a longer run whose new
#       inputs that add coverage are merged into fuzz/corpus/<target>/
#       (libFuzzer -merge=1 on edges: the corpus grows only by inputs that
#       reach code it did not); commit them
# To reproduce:  build-fuzz/bin/<target> <input file>
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
MERGE=0
if [ "${1:-}" = --merge ]; then
  MERGE=1
  shift
fi
DURATION="${1:-30}"
[ $# -gt 0 ] && shift
DIR=build-fuzz
FUZZERS=(task_spec_fuzzer request_fuzzer worker_link_fuzzer)
if [ $# -gt 0 ]; then FUZZERS=("$@"); fi

# ccache hits across checkouts (CI builds a fresh clone elsewhere).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" CCACHE_NOHASHDIR=true

t0=$(date +%s)
cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DQFARM_FUZZ=ON -DQFARM_SANITIZE=address,undefined >/dev/null
cmake --build "$DIR" -j "${JOBS:-2}" --target "${FUZZERS[@]}"
t1=$(date +%s)
echo "fuzz: build took $((t1 - t0)) s"

WORK=$(mktemp -d /tmp/qfarm-fuzz.XXXXXX)
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

failed=0
passed=0
for fuzzer in "${FUZZERS[@]}"; do
  mkdir -p "$WORK/$fuzzer/corpus" "$WORK/$fuzzer/artifacts"
  cp fuzz/corpus/"$fuzzer"/* "$WORK/$fuzzer/corpus/"
  args=(-max_total_time="$DURATION" -timeout=10 -rss_limit_mb=2048
    -max_len=4096 -print_final_stats=1
    -artifact_prefix="$WORK/$fuzzer/artifacts/")
  if [ -f "fuzz/${fuzzer%_fuzzer}.dict" ]; then
    args+=(-dict="fuzz/${fuzzer%_fuzzer}.dict")
  fi
  log="$WORK/$fuzzer/log"
  if "$DIR/bin/$fuzzer" "${args[@]}" "$WORK/$fuzzer/corpus" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz: $fuzzer passed: ${runs:-?} inputs in ${DURATION} s, ${cov:-cov: ?}," \
      "corpus $(ls fuzz/corpus/"$fuzzer" | wc -l) -> $(ls "$WORK/$fuzzer/corpus" | wc -l)"
    passed=$((passed + 1))
    if [ "$MERGE" = 1 ]; then
      before=$(ls fuzz/corpus/"$fuzzer" | wc -l)
      # Edges only (-use_counters=0): an input joins the tree's corpus when
      # it reaches code none there reaches, not for hit counts, which keeps
      # the committed corpus small.
      "$DIR/bin/$fuzzer" -merge=1 -use_counters=0 -max_len=4096 -rss_limit_mb=2048 \
        fuzz/corpus/"$fuzzer" "$WORK/$fuzzer/corpus" >"$log.merge" 2>&1 || {
        echo "fuzz: merging $fuzzer failed:"
        tail -n 20 "$log.merge"
        passed=$((passed - 1))
        failed=$((failed + 1))
        continue
      }
      echo "fuzz: $fuzzer corpus in the tree: $before -> $(ls fuzz/corpus/"$fuzzer" | wc -l) inputs," \
        "$(du -sk fuzz/corpus/"$fuzzer" | cut -f1) KiB"
    fi
  else
    echo "fuzz: $fuzzer FAILED; the end of its log ($log):"
    tail -n 60 "$log"
    echo "fuzz: failing input(s):" "$WORK/$fuzzer/artifacts/"*
    failed=$((failed + 1))
  fi
done

echo "fuzz: $passed fuzzers passed, $failed failed"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: logs and inputs kept in $WORK"
  exit 1
fi
rm -rf "$WORK"
