#!/usr/bin/env bash
# The farm in containers, from the manifests users deploy:
#   tests/container_test.sh [IMAGE]        default IMAGE: qfarm:dev
# Renders deploy/k8s/overlays/{auto,thread,async} with `kubectl kustomize`
# and starts, from IMAGE, the coordinator of the auto overlay's StatefulSet
# and two workers, the thread and the async overlays' Deployments, with the
# command, args, env, securityContext, volumes, limits and grace the
# rendered manifests give them (tests/k8s_podman.py; only the addresses are
# rewritten to 127.0.0.1, listen ports to 0). Then, with the host's `qfarm`
# ($BIN_DIR, default build/bin):
#   - the seed Job's command, from the host and as the Job's own container;
#   - a batch during which the worker holding its tasks is SIGKILLed: every
#     task reports ok exactly once, with its own value;
#   - the coordinator stopped with its pod's grace: it exits 0 inside it and
#     logs its shutdown; then the surviving worker: it drains and exits 0.
# Containers use the host's network and bind 127.0.0.1 only. Each run
# names its containers uniquely and removes them, also on failure; nothing
# depends on an earlier run. The last line counts the checks that passed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
IMAGE="${1:-qfarm:dev}"
BIN_DIR="${BIN_DIR:-$ROOT/build/bin}"
QFARM="$BIN_DIR/qfarm"
# shellcheck source=deploy/podman.sh
source deploy/podman.sh

START=$(date +%s)
RUN="qfarm-ct-$$-$START"
WORK=$(mktemp -d /tmp/qfarm-container-test.XXXXXX)
CONTAINERS=()
PASSED=0

log() { echo "container_test: [$(($(date +%s) - START)) s] $*"; }
fail() {
  echo "container_test: FAIL: $*" >&2
  exit 1
}
pass() {
  PASSED=$((PASSED + 1))
  log "ok: $*"
}

MAP=""
cleanup() {
  local rc=$?
  # The batch's client, if the run stopped while it ran.
  if [ -n "$MAP" ]; then kill "$MAP" 2>/dev/null || true; fi
  for c in "${CONTAINERS[@]}"; do
    if [ "$rc" != 0 ]; then
      echo "--- logs of $c" >&2
      qpodman logs "$c" 2>&1 | tail -n 30 >&2 || true
    fi
    qpodman rm --force --time 0 "$c" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
  if [ "$rc" = 0 ]; then
    echo "container: $PASSED passed, 0 failed"
  else
    echo "container: $PASSED passed, 1 failed"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v kubectl >/dev/null ||
  fail "kubectl is needed to render deploy/k8s (Debian 12's own kubernetes-client is 1.20, whose kustomize predates these overlays)"
[ -x "$QFARM" ] || fail "no $QFARM (build first, or set BIN_DIR)"
qpodman image exists "$IMAGE" || fail "no image $IMAGE (scripts/image.sh)"

for overlay in auto thread async; do
  kubectl kustomize "deploy/k8s/overlays/$overlay" >"$WORK/$overlay.yaml"
done

# Translates one rendered workload into `podman run` arguments (ARGS).
ARGS=()
translate() {  # OVERLAY KIND/NAME POD_NAME REWRITE...
  local overlay=$1 workload=$2 pod=$3
  shift 3
  local rewrites=()
  for r in "$@"; do rewrites+=("--rewrite=$r"); done
  /usr/bin/python3 tests/k8s_podman.py "$WORK/$overlay.yaml" "$workload" \
    --pod-name="$pod" --image="$IMAGE" --volume-root="$WORK/volumes/$pod" \
    "${rewrites[@]}" >"$WORK/$pod.args"
  mapfile -d '' -t ARGS <"$WORK/$pod.args"
}

# The value following FLAG in ARGS.
arg_of() {
  local i
  for ((i = 0; i < ${#ARGS[@]} - 1; i++)); do
    if [ "${ARGS[i]}" = "$1" ]; then
      echo "${ARGS[i + 1]}"
      return 0
    fi
  done
  return 1
}

run_container() {  # NAME; ARGS set by translate
  CONTAINERS+=("$1")
  qpodman run --detach --network=host "${QFARM_ULIMITS[@]}" "${ARGS[@]}" \
    >/dev/null
}

# A container's whole log (read first: `grep -q` in a pipe would cut it
# short, and pipefail would count that as a failure).
logs_of() { qpodman logs "$1" 2>&1; }
running() { [ "$(qpodman inspect --format '{{.State.Running}}' "$1")" = true ]; }
exit_code() { qpodman inspect --format '{{.State.ExitCode}}' "$1"; }

# Waits up to SECONDS for COMMAND to succeed.
wait_for() {  # SECONDS WHAT COMMAND...
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
    sleep 0.2
  done
}

# --- the coordinator: the auto overlay's StatefulSet -------------------------
COORD="$RUN-coordinator"
translate auto StatefulSet/qfarm-coordinator "$COORD" \
  "0.0.0.0:50051=127.0.0.1:0" "0.0.0.0:9090=127.0.0.1:0" \
  "0.0.0.0:8080=127.0.0.1:0"
COORD_GRACE=$(arg_of --stop-timeout)
run_container "$COORD"
coordinator_listening() {
  running "$COORD" || fail "the coordinator exited: $(qpodman logs "$COORD" 2>&1 | tail -n 5)"
  ADDRESS=$(qpodman logs "$COORD" 2>/dev/null |
    sed -n 's/^qfarm-coordinator listening on //p')
  [ -n "$ADDRESS" ]
}
ADDRESS=""
wait_for 60 "the coordinator to listen" coordinator_listening
case "$ADDRESS" in 127.0.0.1:*) ;; *) fail "coordinator on $ADDRESS, not loopback" ;; esac
[ -f "$WORK/volumes/$COORD/data/journal.db" ] ||
  fail "no journal in the data volume"
pass "coordinator from StatefulSet/qfarm-coordinator listens on $ADDRESS (read-only root, uid 10001, journal in its volume)"

# --- two workers: the thread and async overlays' Deployments -----------------
WORKERS=()
for mode in thread async; do
  name="$RUN-worker-$mode"
  translate "$mode" Deployment/qfarm-worker "$name" \
    "qfarm-coordinator:50051=$ADDRESS" "0.0.0.0:9090=127.0.0.1:0" \
    "0.0.0.0:8080=127.0.0.1:0"
  WORKER_GRACE=$(arg_of --stop-timeout)
  run_container "$name"
  WORKERS+=("$name")
done
workers_listed() {
  local listed
  listed=$("$QFARM" --coordinator="$ADDRESS" workers 2>/dev/null) || return 1
  for w in "${WORKERS[@]}"; do
    running "$w" || fail "$w exited: $(qpodman logs "$w" 2>&1 | tail -n 5)"
    awk -v id="$w" '$1 == id { found = 1 } END { exit !found }' <<<"$listed" ||
      return 1
  done
}
wait_for 60 "both workers to connect" workers_listed
"$QFARM" --coordinator="$ADDRESS" workers
pass "workers ${WORKERS[*]} connected, named by \$(POD_NAME)"

# --- the seed Job's command ----------------------------------------------------
# Every task of JSON Lines FILE ok, indexes 0..N-1 once each.
check_results() {  # FILE N
  jq -e -s --argjson n "$2" '
    length == $n and
    ([.[].index] | sort) == [range($n)] and
    all(.[]; .status == "ok")' "$1" >/dev/null
}
translate auto Job/qfarm-seed "$RUN-seed" "qfarm-coordinator:50051=$ADDRESS"
# The Job's args follow the image.
for ((i = 0; i < ${#ARGS[@]}; i++)); do
  [ "${ARGS[i]}" = "$IMAGE" ] && break
done
SEED_ARGS=("${ARGS[@]:i+1}")
"$QFARM" "${SEED_ARGS[@]}" --output=json >"$WORK/seed.json"
check_results "$WORK/seed.json" 10 || fail "seed: $(cat "$WORK/seed.json")"
jq -e -s --arg a "${WORKERS[0]}" --arg b "${WORKERS[1]}" \
  'all(.[]; .worker == $a or .worker == $b)' "$WORK/seed.json" >/dev/null ||
  fail "seed ran on unknown workers"
pass "seed (qfarm ${SEED_ARGS[*]}) from the host: 10 ok"

run_container "$RUN-seed"
code=$(timeout 60 podman --runtime runc wait "$RUN-seed") ||
  fail "the seed Job's container did not finish"
[ "$code" = 0 ] || fail "seed Job container exited $code"
grep -Eq '^job [0-9]+ on [^ ]+: 10 tasks: 10 ok' <<<"$(logs_of "$RUN-seed")" ||
  fail "seed Job container: $(logs_of "$RUN-seed" | tail -n 3)"
pass "seed as Job/qfarm-seed's container: 10 ok"

# --- a worker SIGKILLed mid-batch ---------------------------------------------
# Task i sleeps 1000+i ms and returns that number: each result names its task.
TASKS=200
for ((i = 0; i < TASKS; i++)); do echo "sleep:$((1000 + i))ms"; done >"$WORK/batch.txt"
"$QFARM" --coordinator="$ADDRESS" map --from="$WORK/batch.txt" --output=json \
  >"$WORK/batch.json" 2>"$WORK/batch.err" &
MAP=$!
# The victim: the first worker seen running tasks of the batch.
VICTIM=""
victim_busy() {
  local listed
  listed=$("$QFARM" --coordinator="$ADDRESS" workers 2>/dev/null) || return 1
  VICTIM=$(awk 'NR > 1 && $4 > 0 { print $1; exit }' <<<"$listed")
  [ -n "$VICTIM" ]
}
wait_for 30 "a worker with tasks in flight" victim_busy
qpodman kill --signal KILL "$VICTIM" >/dev/null
log "SIGKILLed $VICTIM with tasks in flight"
map_done() { ! kill -0 "$MAP" 2>/dev/null; }
wait_for 180 "the batch" map_done
map_rc=0
wait "$MAP" || map_rc=$?
[ "$map_rc" = 0 ] || fail "qfarm map exited $map_rc: $(tail -n 5 "$WORK/batch.err")"
[ "$(exit_code "$VICTIM")" = 137 ] || fail "$VICTIM exited $(exit_code "$VICTIM"), not by SIGKILL"
check_results "$WORK/batch.json" "$TASKS" ||
  fail "batch: $(jq -c -s 'map(select(.status != "ok")) | .[:5]' "$WORK/batch.json")"
jq -e -s 'all(.[]; .value == ((1000 + .index) | tostring))' "$WORK/batch.json" \
  >/dev/null || fail "a result carries another task's value"
retried=$(jq -s '[.[] | select(.attempt > 1)] | length' "$WORK/batch.json")
[ "$retried" -gt 0 ] || fail "no task ran again: the kill hit no work"
jq -e -s --arg v "$VICTIM" 'all(.[]; .worker != $v or .attempt == 1)' \
  "$WORK/batch.json" >/dev/null || fail "a retried task reports the killed worker"
pass "$VICTIM SIGKILLed mid-batch: $TASKS tasks ok once each, own values, $retried run again"

# --- stops with the pods' grace ----------------------------------------------
SURVIVOR=""
for w in "${WORKERS[@]}"; do [ "$w" = "$VICTIM" ] || SURVIVOR=$w; done
stopped_in() {  # CONTAINER GRACE: stops it, prints the seconds it took
  local t0
  t0=$(date +%s%N)
  qpodman stop --time "$2" "$1" >/dev/null
  echo $((($(date +%s%N) - t0) / 1000000))
}
ms=$(stopped_in "$COORD" "$COORD_GRACE")
code=$(exit_code "$COORD")
[ "$code" = 0 ] || fail "coordinator exited $code on SIGTERM (grace ${COORD_GRACE}s)"
[ "$ms" -lt $((COORD_GRACE * 1000)) ] || fail "coordinator took ${ms} ms, grace ${COORD_GRACE}s"
shutdown_log=$(grep -E 'signal 15: shutting down|\] stopped$' <<<"$(logs_of "$COORD")" || true)
[ "$(wc -l <<<"$shutdown_log")" = 2 ] ||
  fail "coordinator's log does not show its shutdown"
pass "coordinator stopped (SIGTERM, grace ${COORD_GRACE}s): exit 0 after ${ms} ms; its log: $(tr '\n' '|' <<<"$shutdown_log")"

ms=$(stopped_in "$SURVIVOR" "$WORKER_GRACE")
code=$(exit_code "$SURVIVOR")
[ "$code" = 0 ] || fail "$SURVIVOR exited $code on SIGTERM"
grep -q 'signal 15: draining' <<<"$(logs_of "$SURVIVOR")" ||
  fail "$SURVIVOR's log does not show it draining"
pass "$SURVIVOR stopped (SIGTERM, grace ${WORKER_GRACE}s): drained, exit 0 after ${ms} ms"

log "done in $(($(date +%s) - START)) s"
