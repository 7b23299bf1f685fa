#!/usr/bin/env bash
# Mutation testing: each tests/mutants/*.patch is a small deliberate bug in
# qfarm. For each, on a scratch copy of the committed tree (git archive
# HEAD): apply it, build, run the tests its "Tests:" header names (a ctest
# -R regex; --full runs the whole suite instead) and, when its "Chaos:"
# header asks, that many qfarm-chaos iterations; then revert it. The table
# says which tests failed (the ones that caught it) and the time each took.
# A patch that no longer applies (the code it changes moved) or no longer
# builds is reported as such: refresh it against the current code.
#   scripts/mutants.sh                every mutant, the tests it names
#   scripts/mutants.sh --full         every mutant, the whole ctest suite
#   scripts/mutants.sh NAME...        only these (file names without .patch)
# The unmutated tree is built and its selected tests run first: a mutant is
# only "caught" by tests that pass without it. Slow (a build and a test run
# per mutant): not part of scripts/test.sh. MUTANTS_DIR (default
# /tmp/qfarm-mutants) holds the scratch tree, the build and the logs.
# Exits 0 when every mutant was caught, 1 when one survived, 2 when one did
# not apply or build (or the unmutated tests failed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

FULL=0
NAMES=()
for arg in "$@"; do
  case "$arg" in
    --full) FULL=1 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "mutants: unknown flag $arg" >&2; exit 2 ;;
    *) NAMES+=("$arg") ;;
  esac
done
PATCHES=()
if [ ${#NAMES[@]} -eq 0 ]; then
  PATCHES=("$ROOT"/tests/mutants/*.patch)
else
  for name in "${NAMES[@]}"; do PATCHES+=("$ROOT/tests/mutants/${name%.patch}.patch"); done
fi

scripts/install-deps.sh
WORK="${MUTANTS_DIR:-/tmp/qfarm-mutants}"
SRC="$WORK/src"
BUILD="$WORK/build"
LOGS="$WORK/logs"
rm -rf "$SRC" "$LOGS"
mkdir -p "$SRC" "$LOGS"
git archive HEAD | tar -x -C "$SRC"
echo "mutants: scratch tree of $(git rev-parse --short HEAD) in $SRC" \
  "(uncommitted changes are not in it)"
export CCACHE_BASEDIR="$SRC" CCACHE_NOHASHDIR=true GRPC_DNS_RESOLVER=native

header() {  # FIELD PATCH
  sed -n "s/^$1: *//p" "$2" | head -n 1
}

build() {  # LOG
  cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DQFARM_WERROR=OFF >"$1" 2>&1 &&
    nice -n 5 cmake --build "$BUILD" -j "${JOBS:-2}" >>"$1" 2>&1
}

# Runs the selected tests; prints the names of those that failed (or
# "qfarm-chaos"), one a line. Returns non-zero when any failed.
run_tests() {  # REGEX CHAOS_ITERATIONS LOG
  local regex=$1 chaos=$2 log=$3 args=() rc=0
  if [ "$FULL" = 0 ] && [ -n "$regex" ]; then args=(-R "$regex"); fi
  ctest --test-dir "$BUILD" --output-on-failure --timeout 300 \
    -j "${JOBS:-2}" "${args[@]}" >"$log" 2>&1 || rc=1
  sed -n '/The following tests FAILED:/,$p' "$log" |
    sed -n -E 's/^[[:space:]]*[0-9]+ - (.*) \([^()]*\)$/\1/p' |
    sed -E 's/  # GetParam\(\) = .*//'
  if [ "$chaos" -gt 0 ] 2>/dev/null; then
    if ! "$BUILD/bin/qfarm-chaos" --seed=1 --iterations="$chaos" \
      --keep-logs="$LOGS" >"$log.chaos" 2>&1; then
      echo "qfarm-chaos"
      rc=1
    fi
  fi
  return $rc
}

t0=$(date +%s)
echo "mutants: building the unmutated tree"
if ! build "$LOGS/baseline.build.log"; then
  echo "mutants: the unmutated tree does not build; see $LOGS/baseline.build.log"
  exit 2
fi
regexes=()
chaos_max=0
for patch in "${PATCHES[@]}"; do
  [ -f "$patch" ] || { echo "mutants: no $patch" >&2; exit 2; }
  regexes+=("$(header Tests "$patch")")
  c=$(header Chaos "$patch")
  if [ -n "$c" ] && [ "$c" -gt "$chaos_max" ]; then chaos_max=$c; fi
done
union=$(IFS='|'; echo "${regexes[*]}")
echo "mutants: running the selected tests on the unmutated tree"
if ! failed=$(run_tests "$union" "$chaos_max" "$LOGS/baseline.test.log"); then
  echo "mutants: the unmutated tree fails (so nothing could be said):"
  echo "$failed" | sed 's/^/  /'
  echo "  see $LOGS/baseline.test.log"
  exit 2
fi
echo "mutants: baseline passes ($(($(date +%s) - t0)) s)"

rows=()
survived=0
broken=0
for patch in "${PATCHES[@]}"; do
  name=$(basename "$patch" .patch)
  regex=$(header Tests "$patch")
  chaos=$(header Chaos "$patch")
  chaos=${chaos:-0}
  start=$(date +%s)
  echo "mutants: $name: $(header Mutant "$patch")"
  if ! (cd "$SRC" && git apply --check "$patch" 2>"$LOGS/$name.apply.log"); then
    echo "  does not apply to this tree (refresh the patch):"
    sed 's/^/    /' "$LOGS/$name.apply.log"
    rows+=("$name|does not apply: refresh the patch|-")
    broken=$((broken + 1))
    continue
  fi
  (cd "$SRC" && git apply "$patch")
  if ! build "$LOGS/$name.build.log"; then
    echo "  does not build (refresh the patch): $LOGS/$name.build.log"
    rows+=("$name|does not build: refresh the patch|$(($(date +%s) - start)) s")
    broken=$((broken + 1))
  elif caught=$(run_tests "$regex" "$chaos" "$LOGS/$name.test.log"); then
    echo "  SURVIVED: every selected test passed ($LOGS/$name.test.log)"
    rows+=("$name|SURVIVED|$(($(date +%s) - start)) s")
    survived=$((survived + 1))
  else
    caught=$(echo "$caught" | paste -sd ' ' -)
    echo "  caught by: $caught"
    rows+=("$name|caught by: $caught|$(($(date +%s) - start)) s")
  fi
  (cd "$SRC" && git apply -R "$patch")
done
# Leave the build matching the unmutated tree for the next run.
build "$LOGS/final.build.log" || true

echo
echo "| mutant | result | time |"
echo "| --- | --- | --- |"
for row in "${rows[@]}"; do
  IFS='|' read -r name result secs <<<"$row"
  echo "| $name | $result | $secs |"
done
echo
echo "mutants: ${#rows[@]} mutants, $survived survived, $broken did not apply" \
  "or build, in $(($(date +%s) - t0)) s (logs: $LOGS)"
if [ "$broken" -gt 0 ]; then exit 2; fi
[ "$survived" -eq 0 ]
