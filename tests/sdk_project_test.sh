#!/usr/bin/env bash
# Installs qfarm from BUILD_DIR into a temp prefix, builds tests/sdk_project
# against it with find_package(qfarm), and runs its kind locally:
# `shout-worker map --local shout:hi` must print HI!.
# Usage: sdk_project_test.sh SOURCE_DIR BUILD_DIR [SANITIZE]
set -euo pipefail
src=$1 build=$2 sanitize=${3:-}
case "$sanitize" in OFF|off|0|FALSE|false) sanitize="";; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
flags=()
if [ -n "$sanitize" ]; then
  flags+=("-DCMAKE_CXX_FLAGS=-fsanitize=$sanitize"
          "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=$sanitize")
fi
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$src/tests/sdk_project" -B "$tmp/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  "${launcher[@]}" "${flags[@]}" >/dev/null
cmake --build "$tmp/build" >/dev/null
out=$("$tmp/build/shout-worker" map --local shout:hi 2>/dev/null)
echo "$out"
case "$out" in
  *"ok"*"HI!"*) echo "PASS: the installed SDK runs shout:hi";;
  *) echo "FAIL: expected HI! from shout:hi"; exit 1;;
esac
