// Running one task: what each built-in kind does, how an attempt is bounded
// by its timeout and stopped by cancellation, and what it comes to. Other
// kinds run as registered (qfarm/kinds.h, executors/kind_runner.h).
//
//   CancelToken cancel;
//   TaskOutcome outcome = RunTaskBlocking(kinds, assignment.task(), cancel);
//   v1::TaskResult result = MakeResult(assignment, std::move(outcome), ...);
//
// The built-in kinds:
//   sleep  waits `arg` ms; value "<arg>". RunTaskBlocking() waits on the
//          CancelToken; the async executor awaits a timer instead, built
//          from CheckRunnable(), SleepWaitTime() and SleepOutcome().
//   echo   value = `text`.
//   cpu    SHA-256("qfarm"), then SHA-256 of the 32-byte digest `arg` times;
//          value = lowercase hex of the last digest. Polls cancellation and
//          the timeout every 1024 iterations.
//   http   a GET of the URL in `text` through libcurl; value
//          "status=200 bytes=1234 sha256=<16 hex> ttfb_ms=12.3 total_ms=104.2";
//          non-2xx statuses and connection errors are FAILED. Rules and
//          formats: executors/http_task.h. RunTaskBlocking() runs it on the
//          calling thread, polling cancellation every kHttpCancelPollMs; the
//          async executor drives it from its loop instead (HttpMulti).
// A task that breaks ValidateTask()'s rules (a bad kind name, a negative
// arg, ...; checked under NoTaskLimits(): limits are the coordinator's to
// check, see docs/ARCHITECTURE.md) or whose kind the executor's Kinds lacks
// is FAILED with the reason. A registered kind's value over
// kMaxPayloadBytesCeiling is FAILED too: no coordinator would take it. With
// timeout_ms > 0, an attempt that runs past it is TIMED_OUT ("timed out after
// <N>ms"); an http task without one is bounded by kHttpDefaultTimeoutMs.
//
// Sleeps and timeouts run on real (steady) time; an injected Clock only
// stamps started_us/finished_us.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "executors/cancel_token.h"
#include "executors/executor.h"
#include "executors/task_outcome.h"
#include "qfarm/kinds.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {

// Calls fn(begin, end, job_id) for each run [begin, end) of consecutive
// assignments of one job, in order: a batch takes one token per run.
template <typename Fn>
void ForEachJobRun(const std::vector<v1::Assignment>& assignments, Fn fn) {
  size_t begin = 0;
  while (begin < assignments.size()) {
    const uint64_t job = assignments[begin].job_id();
    size_t end = begin + 1;
    while (end < assignments.size() && assignments[end].job_id() == job) {
      ++end;
    }
    fn(begin, end, job);
    begin = end;
  }
}

// Instant tasks (the built-in echo, Kinds::IsInstant()) finish at once
// wherever they run: executors run them back to back without a coroutine or
// a wake-up each, and deliver their results in batches.
//
// Makes `out` the result of an echo task that ran at `now_us`: OK with its
// text as the value (moved out of `assignment`), started and finished at
// `now_us`, or FAILED if it breaks ValidateTask()'s rules. The same result
// RunTaskBlocking() and MakeResult() give, without copies. Sets every field
// of `out`, which may hold an earlier result (and keeps its strings).
void RunEcho(v1::Assignment& assignment, absl::string_view worker,
             absl::string_view executor, int64_t now_us, v1::TaskResult* out);

// Results on their way to a sink in one ResultSink::OnResults() call, built
// in messages reused from earlier batches: a sink that leaves the messages
// of a consumed batch in the vector it was handed gives them back, and
// their strings are not allocated again.
//
//   ResultBuffer buffer;
//   RunEcho(assignment, "w1", "async", now_us, &buffer.Next());
//   buffer.FlushTo(sink);
//
// Thread-compatible.
class ResultBuffer {
 public:
  // A result appended to the batch, for RunEcho() to fill: it may hold an
  // earlier result.
  v1::TaskResult& Next();
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Hands the batch to `sink` and keeps what it leaves for reuse.
  void FlushTo(ResultSink* sink);

 private:
  // Spare messages kept at most. Spares come only from a sink that gives
  // back more messages than a batch held (the local pool's, which circulates
  // one window of them): enough to keep them all.
  static constexpr size_t kMaxSpares = 65'536;

  // [0, size_) the batch, then messages the sink gave back, reused in place.
  std::vector<v1::TaskResult> results_;
  size_t size_ = 0;
  // Messages the sink gave back that a smaller batch did not use; Next()
  // takes them once results_ is used up.
  std::vector<v1::TaskResult> spares_;
};

// Runs `task` to its outcome on the calling thread, blocking for sleeps,
// cpu work, http transfers and registered kinds (RunRegisteredBlocking()).
// Returns CANCELLED if `cancel` is (or becomes) set before the task
// completes.
TaskOutcome RunTaskBlocking(const Kinds& kinds, const v1::Task& task,
                            const CancelToken& cancel);

// Why `task` may not run (it breaks ValidateTask()'s rules, or its kind is
// one `kinds` lacks), as a FAILED outcome; state UNSPECIFIED if it may run.
// `*kind` (if not null) is set to the task's kind when it may run.
TaskOutcome CheckRunnable(const Kinds& kinds, const v1::Task& task,
                          const Kinds::Kind** kind = nullptr);

// How long a sleep task waits: `arg` ms, cut to timeout_ms if that is set
// and shorter.
absl::Duration SleepWaitTime(const v1::Task& task);

// The outcome of a sleep task that waited SleepWaitTime() uninterrupted: OK
// with value "<arg>", or TIMED_OUT if the timeout cut it short.
TaskOutcome SleepOutcome(const v1::Task& task);

// The cpu kind's value for `units` iterations, uninterrupted.
std::string CpuDigestHex(int64_t units);

// As MakeResult(), into `out` (cleared first), reusing its strings.
void MakeResultInto(const v1::Assignment& assignment, TaskOutcome outcome,
                    absl::string_view worker, absl::string_view executor,
                    int64_t started_us, int64_t finished_us,
                    v1::TaskResult* out);

// A result for `assignment` (job, index, attempt copied) with `outcome`.
// queued_us/dispatched_us are left 0 for the coordinator. started_us is 0
// for a task that never started.
v1::TaskResult MakeResult(const v1::Assignment& assignment, TaskOutcome outcome,
                          absl::string_view worker, absl::string_view executor,
                          int64_t started_us, int64_t finished_us);

}  // namespace qfarm::executors
