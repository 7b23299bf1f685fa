#!/usr/bin/env bash
# Clang's check of the lock annotations (ABSL_GUARDED_BY,
# ABSL_EXCLUSIVE_LOCKS_REQUIRED, ...) that GCC ignores: every translation
# unit of qfarm's libraries and binaries (not the tests, not the generated
# protos) is parsed by clang with -Wthread-safety -Werror, with the flags of
# BUILD_DIR's compile_commands.json (default: build/, which
# scripts/build.sh makes first). -fsyntax-only: no code generation, no
# linking.
#
# A unit that passed is remembered under QFARM_TSA_CACHE (default
# ~/.cache/qfarm-tsa) by the hash of clang's version, its command and its
# preprocessed text, and is not parsed again until one of them changes.
# Ends with "thread-safety: N passed, M failed" (one per unit).
#   scripts/thread_safety.sh          JOBS=N: units at once (default: nproc)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
CACHE="${QFARM_TSA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qfarm-tsa}"
JOBS="${JOBS:-$(nproc)}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=true

t0=$(date +%s)
BUILD_DIR="$BUILD_DIR" scripts/build.sh >/dev/null || {
  echo "thread-safety: the build of $BUILD_DIR failed"
  echo "thread-safety: 0 passed, 1 failed"
  exit 1
}
mkdir -p "$CACHE"
# Stamps nobody used for a month go.
find "$CACHE" -type f -mtime +30 -delete 2>/dev/null
WORK=$(mktemp -d /tmp/qfarm-tsa.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# One line per unit: the clang command, shell-quoted, run from its
# directory. Asio finds clang's coroutines only when told (CMakeLists.txt).
python3 - "$BUILD_DIR/compile_commands.json" >"$WORK/units" <<'EOF'
import json, re, shlex, sys
for unit in json.load(open(sys.argv[1])):
    path = unit["file"]
    if re.search(r"(_test|_benchmark)\.cc$|/(tests|fuzz|micro)/|/build[^/]*/",
                 path):
        continue
    args, skip = [], False
    for arg in shlex.split(unit["command"])[1:]:
        if skip:
            skip = False
        elif arg == "-o":
            skip = True
        elif arg != "-c":
            args.append(arg)
    args += ["-Wthread-safety", "-Werror", "-DASIO_HAS_CO_AWAIT=1"]
    print(shlex.quote(unit["directory"]), shlex.quote(path),
          shlex.join(["clang++"] + args))
EOF

# check_unit DIR FILE CLANG-ARGS...: parses one unit unless its stamp is
# there; prints "hit", "ok" or "FAILED FILE" with clang's findings.
check_unit() {
  local dir=$1 file=$2 key
  shift 2
  cd "$dir" || return 1
  key=$({
    clang++ --version
    printf '%s\n' "$@"
    "$@" -E -o - 2>/dev/null
  } | sha256sum | cut -c1-40)
  if [ -e "$CACHE/$key" ]; then
    touch "$CACHE/$key"
    echo hit
    return 0
  fi
  local out
  if out=$("$@" -fsyntax-only 2>&1); then
    : >"$CACHE/$key"
    echo ok
  else
    printf 'FAILED %s\n%s\n' "$file" "$out"
  fi
}
export -f check_unit
export CACHE

while IFS= read -r line; do printf '%s\0' "$line"; done <"$WORK/units" |
  xargs -0 -n 1 -P "$JOBS" bash -c 'eval "check_unit $1"' _ >"$WORK/out"

units=$(wc -l <"$WORK/units")
hits=$(grep -c '^hit$' "$WORK/out")
ok=$(grep -c '^ok$' "$WORK/out")
failed=$(grep -c '^FAILED ' "$WORK/out")
grep -v -E '^(hit|ok)$' "$WORK/out"
echo "thread-safety: $units units: $ok parsed, $hits unchanged since a" \
  "pass, $failed with findings, in $(($(date +%s) - t0)) s"
# A unit that printed nothing (clang crashed, say) counts as failed.
missing=$((units - hits - ok - failed))
echo "thread-safety: $((hits + ok)) passed, $((failed + missing)) failed"
[ $((failed + missing)) -eq 0 ]
