#!/usr/bin/env bash
# Builds the qfarm image (deploy/Dockerfile) with podman, as root, on a
# Debian 12 machine that reaches no container registry:
#   scripts/image.sh [TAG]          default TAG: qfarm:dev
# 1. installs podman, runc and debootstrap when they are missing;
# 2. makes the base image $QFARM_BASE_IMAGE (default
#    localhost/qfarm-base:bookworm) when it does not exist: debootstrap's
#    minbase of bookworm from the mirrors this machine's apt uses, imported
#    with `podman import`. It is kept and reused while it exists
#    (`podman rmi localhost/qfarm-base:bookworm` makes the next run fetch a
#    fresh one);
# 3. builds TAG on that base, with the host's ccache directory mounted as the
#    build stage's (its objects are the ones scripts/build.sh makes here, so
#    after a host build the image's compile is cache hits);
# 4. checks that `podman run TAG qfarm-coordinator --help` works, and prints
#    the image's size and runtime packages.
# QFARM_BASE_IMAGE=debian:12 builds on the registry's image instead (no
# debootstrap). QFARM_IMAGE_CCACHE=DIR shares another ccache directory
# (an empty one measures a cold compile); QFARM_IMAGE_CCACHE=0 shares none
# (the build stage then keeps its own cache mount).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-qfarm:dev}"
BASE="${QFARM_BASE_IMAGE:-localhost/qfarm-base:bookworm}"
# shellcheck source=deploy/podman.sh
source deploy/podman.sh

# Seconds since the script started, for each step's line.
START=$(date +%s)
step() { echo "image: [$(($(date +%s) - START)) s] $*"; }

scripts/install-deps.sh --only podman runc debootstrap

# Writes the base image: Debian 12 minbase, the host's Debian mirrors
# (apt-get indextargets lists those apt reads), docs and man pages left out
# of every package installed later (as Debian's slim images do), no apt
# caches.
BASE_ROOT=""
trap '[ -z "$BASE_ROOT" ] || rm -rf "$BASE_ROOT" "$BASE_ROOT.log"' EXIT
make_base() {
  BASE_ROOT=$(mktemp -d /var/tmp/qfarm-base.XXXXXX)
  local root=$BASE_ROOT sources mirror
  # shellcheck disable=SC2016  # apt's own $(FIELD) syntax
  sources=$(apt-get indextargets --format '$(SITE) $(RELEASE)' \
    'Identifier: Packages' | awk '$2 ~ /^bookworm/' | sort -u)
  mirror=$(awk '$2 == "bookworm" { print $1; exit }' <<<"$sources")
  mirror="${mirror:-http://deb.debian.org/debian}"
  step "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; return 1; }
  if [ -n "$sources" ]; then
    awk '{ print "deb", $1, $2, "main" }' <<<"$sources" \
      >"$root/etc/apt/sources.list"
  fi
  cat >"$root/etc/dpkg/dpkg.cfg.d/qfarm-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/* "$root"/usr/share/man/* \
    "$root"/usr/share/info/* "$root"/var/log/*.log
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
  find "$root/usr/share/locale" -mindepth 1 ! -name locale.alias -delete \
    2>/dev/null || true
  step "importing the base as $BASE"
  tar --numeric-owner -C "$root" -c . | qpodman import - "$BASE" >/dev/null
  rm -rf "$root" "$root.log"
  BASE_ROOT=""
}

if [ -n "${QFARM_BASE_IMAGE:-}" ] || qpodman image exists "$BASE"; then
  step "base $BASE"
else
  make_base
fi

build_args=(--build-arg "BASE_IMAGE=$BASE")
if [ "$BASE" != "${BASE#localhost/}" ]; then
  build_args+=(--pull=never)
fi
ccache_dir="${QFARM_IMAGE_CCACHE:-}"
if [ -z "$ccache_dir" ] && command -v ccache >/dev/null; then
  ccache_dir=$(ccache --get-config cache_dir)
fi
if [ -n "$ccache_dir" ] && [ "$ccache_dir" != 0 ]; then
  mkdir -p "$ccache_dir"
  # ccache hashes the locale variables too.
  build_args+=(--volume "$ccache_dir:/ccache" --build-arg CCACHE_DIR=/ccache
    --build-arg "BUILD_LOCALE=$(env | grep -E '^(LANG|LC_ALL|LC_CTYPE|LC_MESSAGES)=' | tr '\n' ' ' || true)")
  step "building $TAG, sharing ccache $ccache_dir"
else
  step "building $TAG"
fi
# Each step's line gets the time it started.
qpodman build --network=host "${QFARM_ULIMITS[@]}" "${build_args[@]}" \
  -f deploy/Dockerfile -t "$TAG" . 2>&1 |
  while IFS= read -r line; do
    case "$line" in
      "["*"] STEP "* | "["*"] COMMIT"*) step "$line" ;;
      *) echo "$line" ;;
    esac
  done

step "checking $TAG"
qpodman run --rm --network=host "${QFARM_ULIMITS[@]}" "$TAG" \
  qfarm-coordinator --help >/dev/null
size=$(qpodman image inspect --format '{{.Size}}' "$TAG")
step "$TAG: $((size / 1000000)) MB; runtime packages:" \
  "$(qpodman run --rm --network=host "${QFARM_ULIMITS[@]}" "$TAG" \
    cat /usr/local/share/qfarm/runtime-packages.txt | tr '\n' ' ')"
