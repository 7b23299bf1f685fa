#!/usr/bin/env bash
# Sanitizer builds and their tests.
#   asan  build-asan, -DQFARM_SANITIZE=address,undefined: every target and the
#         whole ctest suite. LeakSanitizer is on; UBSan findings are fatal
#         (-fno-sanitize-recover=undefined, set by CMakeLists.txt).
#   tsan  build-tsan, -DQFARM_SANITIZE=thread: the test binaries in
#         TSAN_TESTS below (the gRPC services in-process, and the farm,
#         session, security and client tests) and the binaries they start
#         (TSAN_BINARIES), built with TSan too. absl::Mutex is made visible
#         to TSan by scripts/sanitizers/absl_mutex_tsan_shim.cc, linked into
#         that build; reports from inside Debian's uninstrumented gRPC and
#         protobuf are suppressed by scripts/sanitizers/tsan.supp (third-party
#         frames only, each with its reason). A child process that reports a
#         race exits 66, which fails the test that stops it.
#
#   scripts/sanitize.sh                 both
#   scripts/sanitize.sh asan|tsan       one
#   scripts/sanitize.sh asan -R Farm    further arguments go to ctest
#
# Prints ctest's summary for each; exits non-zero if a build or a test fails.
# Warnings are not errors here: the normal build (scripts/build.sh) enforces
# them, and sanitizer instrumentation makes GCC 12 report false ones (e.g.
# -Wmaybe-uninitialized inside libstdc++'s <regex> under ASan).
# Suppressions (scripts/sanitizers/*.supp) cover third-party code only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

WHICH="${1:-all}"
case "$WHICH" in
  asan | tsan | all) [ $# -gt 0 ] && shift ;;
  -*) WHICH=all ;;
  *) echo "usage: scripts/sanitize.sh [asan|tsan|all] [ctest args...]" >&2
     exit 2 ;;
esac

# ccache hits across checkouts (CI builds a fresh clone elsewhere).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" CCACHE_NOHASHDIR=true
# c-ares leaks 20 bytes per name it resolves (toolchain.md); resolve natively.
export GRPC_DNS_RESOLVER=native
JOBS="${JOBS:-2}"
SUPP="$ROOT/scripts/sanitizers"

# The test binaries that run under TSan: executors, scheduler, journal,
# router and worker protocol, common, the HTTP test server, the gRPC services
# in-process and their network-free pieces, the client library and the CLI,
# and the integration tests that start the binaries below.
TSAN_TESTS=(executors_test scheduler_test journal_test common_test
  http_test_server_test worker_protocol_test coordinator_server_test
  coordinator_unit_test client_test cli_test session_test farm_test
  security_test submit_test retention_test)
TSAN_BINARIES=(qfarm-coordinator qfarm-worker qfarm)
# Left out under TSan: tests that read a protobuf map field (a Struct) that
# Debian's uninstrumented libprotobuf filled. Under __SANITIZE_THREAD__,
# protobuf's MapFieldBase has two more members (map_field.h), so the
# instrumented test reads the library's map with another layout. They are
# single-threaded and run in the normal and ASan stages.
TSAN_EXCLUDE='^ResultFormatTest\.JsonLine'

now() { date +%s; }

run_asan() {
  local dir=build-asan t0 t1 t2
  t0=$(now)
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DQFARM_WERROR=OFF \
    -DQFARM_SANITIZE=address,undefined >/dev/null || return 1
  cmake --build "$dir" -j "$JOBS" || return 1
  t1=$(now)
  echo "sanitize: asan build took $((t1 - t0)) s"
  # Child processes (the binaries the integration tests start) inherit these.
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:check_initialization_order=1:detect_stack_use_after_return=1" \
  LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1" \
    ctest --test-dir "$dir" --output-on-failure --timeout 600 -j "$JOBS" "$@"
  local rc=$?
  t2=$(now)
  echo "sanitize: asan tests took $((t2 - t1)) s"
  return $rc
}

run_tsan() {
  local dir=build-tsan t0 t1 t2
  t0=$(now)
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DQFARM_WERROR=OFF \
    -DQFARM_SANITIZE=thread >/dev/null || return 1
  cmake --build "$dir" -j "$JOBS" --target "${TSAN_TESTS[@]}" \
    "${TSAN_BINARIES[@]}" || return 1
  t1=$(now)
  echo "sanitize: tsan build took $((t1 - t0)) s"
  # ctest numbers of the tests whose command is one of TSAN_TESTS (the
  # others are not built here), but those TSAN_EXCLUDE names.
  local numbers
  numbers=$(ctest --test-dir "$dir" --show-only=json-v1 | python3 -c '
import json, os, re, sys
exclude = re.compile(sys.argv[1])
wanted = set(sys.argv[2:])
tests = json.load(sys.stdin)["tests"]
print(",".join(str(i) for i, t in enumerate(tests, 1)
               if os.path.basename((t.get("command") or [""])[0]) in wanted
               and not exclude.search(t["name"])))
' "$TSAN_EXCLUDE" "${TSAN_TESTS[@]}")
  if [ -z "$numbers" ]; then
    echo "sanitize: no TSan tests found in $dir" >&2
    return 1
  fi
  TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:history_size=4:suppressions=$SUPP/tsan.supp" \
    ctest --test-dir "$dir" --output-on-failure --timeout 600 -j "$JOBS" \
      -I "0,0,0,$numbers" "$@"
  local rc=$?
  t2=$(now)
  echo "sanitize: tsan tests took $((t2 - t1)) s"
  return $rc
}

status=0
if [ "$WHICH" = asan ] || [ "$WHICH" = all ]; then
  run_asan "$@" || status=1
fi
if [ "$WHICH" = tsan ] || [ "$WHICH" = all ]; then
  run_tsan "$@" || status=1
fi
exit $status
