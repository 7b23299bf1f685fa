#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries the given
# binaries load (ldd's closure, the dynamic loader included), one name a
# line, sorted. The image's runtime stage (deploy/Dockerfile) installs
# exactly these, so a binary that links a library more or less changes the
# image with it. Fails, naming it, when a library is missing or belongs to
# no package.
#   deploy/runtime-packages.sh build/bin/qfarm build/bin/qfarm-worker ...
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }

libs=$(
  for binary in "$@"; do
    out=$(ldd "$binary") || { echo "runtime-packages: ldd $binary failed" >&2; exit 1; }
    if grep -q 'not found' <<<"$out"; then
      echo "runtime-packages: $binary: $(grep 'not found' <<<"$out")" >&2
      exit 1
    fi
    # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux... (0x...)";
    # the vDSO has no file.
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out"
  done | sort -u
)

# Each library as ldd gives it, resolved, and under the other half of
# Debian's merged /usr: dpkg knows one of these spellings.
spellings() {
  local c
  for c in "$1" "$(readlink -f "$1")"; do
    echo "$c"
    case "$c" in
      /usr/*) echo "${c#/usr}" ;;
      *) echo "/usr$c" ;;
    esac
  done
}
candidates=$(for lib in $libs; do spellings "$lib"; done | sort -u)
# One query for all ("pkg:arch: /path" per match; a spelling dpkg does not
# know is an error line, and a non-zero exit, to ignore).
# shellcheck disable=SC2086  # one word per path
owners=$(dpkg-query -S $candidates 2>/dev/null || true)
for lib in $libs; do
  pkg=""
  while read -r c; do
    pkg=$(awk -v path="$c" '$NF == path { sub(/:.*/, "", $1); print $1; exit }' \
      <<<"$owners")
    [ -n "$pkg" ] && break
  done < <(spellings "$lib")
  if [ -z "$pkg" ]; then
    echo "runtime-packages: $lib belongs to no Debian package" >&2
    exit 1
  fi
  echo "$pkg"
done | sort -u
