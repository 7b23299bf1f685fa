#!/usr/bin/env bash
# Regenerates the binary seeds of request_fuzzer (corpus/request_fuzzer/)
# from the text-format messages below, with protoc --encode
# (protobuf-compiler). The seeds are committed; run this after a change to
# the protos and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=fuzz/corpus/request_fuzzer
mkdir -p "$OUT"

encode() {  # NAME MESSAGE TEXT
  printf '%s\n' "$3" | protoc -I proto --encode="qfarm.v1.$2" \
    proto/qfarm/v1/farm.proto proto/qfarm/v1/worker_link.proto >"$OUT/$1"
}

encode submit_sleep SubmitJobRequest 'tasks { kind: TASK_KIND_SLEEP arg: 1000 }'
encode submit_each_kind SubmitJobRequest '
tasks { kind: TASK_KIND_SLEEP arg: 250 timeout_ms: 1000 }
tasks { kind: TASK_KIND_ECHO text: "hello" max_attempts: 2 }
tasks { kind: TASK_KIND_CPU arg: 20000 }
tasks { kind: TASK_KIND_HTTP text: "http://127.0.0.1:8080/" timeout_ms: 5000 }'
encode submit_unknown_kind SubmitJobRequest 'tasks { kind: 99 arg: 1 }'
encode submit_unspecified_kind SubmitJobRequest 'tasks { arg: 5 }'
encode submit_negative SubmitJobRequest '
tasks { kind: TASK_KIND_SLEEP arg: -1 timeout_ms: -5 }
tasks { kind: TASK_KIND_CPU arg: -9223372036854775808 }'
encode submit_absurd SubmitJobRequest '
tasks { kind: TASK_KIND_SLEEP arg: 9223372036854775807 }
tasks { kind: TASK_KIND_ECHO text: "x" max_attempts: 4294967295 timeout_ms: 9223372036854775807 }'
encode submit_bad_urls SubmitJobRequest '
tasks { kind: TASK_KIND_HTTP text: "ftp://host/" }
tasks { kind: TASK_KIND_HTTP text: "http://" }
tasks { kind: TASK_KIND_HTTP text: "https://:443/" }'
encode worker_hello WorkerMessage 'hello { worker_id: "w1" mode: "thread" slots: 4 } credits: 4'
encode worker_hello_zero_slots WorkerMessage 'hello { mode: "auto" slots: 0 }'
encode worker_results WorkerMessage '
results { results { job_id: 1 index: 0 attempt: 1 state: TASK_STATE_OK
  value: "hello" worker: "w1" executor: "thread-1" started_us: 1 finished_us: 2 }
  results { job_id: 1 index: 1 attempt: 2 state: TASK_STATE_FAILED error: "boom" }
  results { job_id: 2 index: 7 state: 42 } } credits: 2'
encode worker_heartbeat WorkerMessage 'heartbeat {}'
encode coordinator_tasks CoordinatorMessage '
tasks { assignments { job_id: 1 index: 0 attempt: 1
  task { kind: TASK_KIND_ECHO text: "hi" } }
  assignments { job_id: 1 index: 1 attempt: 1
  task { kind: TASK_KIND_SLEEP arg: 10 timeout_ms: 100 } } }'
encode coordinator_welcome CoordinatorMessage 'welcome { worker_id: "w1" heartbeat_interval_ms: 1000 }'
encode coordinator_cancel CoordinatorMessage 'cancel { job_ids: 1 job_ids: 2 }'
: >"$OUT/empty"
