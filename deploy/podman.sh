# shellcheck shell=bash
# Sourced by scripts/image.sh and tests/container_test.sh: podman as it
# works on a Debian 12 host run as root without CAP_SYS_RESOURCE.
#   qpodman ARGS...        podman with the runc runtime (crun cannot run on a
#                          hybrid cgroup setup)
#   "${QFARM_ULIMITS[@]}"  explicit ulimits for `podman build` and `podman
#                          run`: the defaults ask for more than the host's
#                          hard limits, which this host may not raise

qpodman() {
  podman --runtime runc "$@"
}

# shellcheck disable=SC2034  # used by the scripts that source this
QFARM_ULIMITS=(
  --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)"
  --ulimit nproc=32768:32768
)
