#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy's hand-picked checks) on the C++ sources that
# changed since BASE (default: main), with the compile commands of
# BUILD_DIR (default: build/, made by scripts/build.sh).
#   scripts/tidy.sh [BASE]
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${1:-main}"
BUILD_DIR="${BUILD_DIR:-build}"
mapfile -t files < <(git diff --name-only --diff-filter=AMR "$BASE" -- \
  '*.cc' | grep -v -E '^(fuzz|build)/' || true)
if [ ${#files[@]} -eq 0 ]; then
  echo "tidy: no changed sources since $BASE"
  exit 0
fi
echo "tidy: ${#files[@]} files changed since $BASE"
# One file at a time: clang-tidy 14 crashes on some files (an AST matcher
# fails), and a crash must not hide the findings in the others.
failed=()
for file in "${files[@]}"; do
  # Asio finds clang's coroutines only when told (see CMakeLists.txt).
  if ! clang-tidy -p "$BUILD_DIR" --quiet \
    --extra-arg=-DASIO_HAS_CO_AWAIT=1 "$file" 2>/dev/null; then
    failed+=("$file")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "tidy: findings (or a crash) in: ${failed[*]}"
  exit 1
fi
echo "tidy: clean"
