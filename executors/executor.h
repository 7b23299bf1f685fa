// Executors run tasks inside one process, in one of the worker modes:
//
//   serial  one task at a time, on one thread ("serial")
//   thread  N tasks at once on N threads, blocking calls ("thread-0" ..
//           "thread-N-1")
//   async   up to N tasks in flight on one Asio event-loop thread running
//           C++20 coroutines; sleeps are timers and http GETs are transfers
//           driven by the loop, never blocked threads ("async")
//   auto    the worker chooses per task: kinds that run on a loop (sleep,
//           http, echo, kinds with a coroutine form) on an async loop
//           ("async"), the others (cpu, kinds with only a blocking form) on a
//           pool of threads sized to the cores ("cpu-0".."cpu-<N-1>"); up to
//           N tasks in flight in all
//
// The same executors serve a worker process (tasks from the coordinator) and
// the client's in-process pool (`qfarm --local`).
//
//   CollectingSink sink;
//   auto executor = MakeExecutor({.mode = Mode::kThread, .slots = 4,
//                                 .worker_name = "w1", .sink = &sink});
//   executor->Submit(assignment);    // result arrives at sink.OnResult()
//   executor->Shutdown();            // waits for everything submitted
//
// Thread-safety: every method may be called from any thread. Results are
// delivered from executor threads, possibly concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "qfarm/kinds.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {

enum class Mode { kSerial, kThread, kAsync, kAuto };

// "serial", "thread", "async", "auto"; INVALID_ARGUMENT otherwise.
absl::StatusOr<Mode> ParseMode(absl::string_view text);
absl::string_view ModeName(Mode mode);

// Where an executor runs: on a worker, which shares the coordinator's queue
// with other workers, or in a local pool, which has its job to itself.
enum class Pool { kWorker, kLocal };

// Tasks at once when the command line does not say: serial 1, thread 4;
// async and auto 1,000 on a worker (each slot is a credit, a task the other
// workers cannot take) and 10,000 in a local pool.
int DefaultSlots(Mode mode, Pool pool);

// Receives each finished task exactly once. Called from executor threads,
// possibly concurrently; implementations must be thread-safe and must not
// block for long (they hold up an executor thread or the event loop).
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void OnResult(v1::TaskResult result) = 0;
  // Several results at once, in the order they finished (executors batch the
  // results of tasks that finish back to back, such as echo tasks). The
  // sink may move from them, and may swap other messages in: whatever
  // `results` holds on return goes back to the executor, which clears and
  // reuses those messages (a sink that returns consumed results saves their
  // allocations). The default hands each to OnResult().
  virtual void OnResults(std::vector<v1::TaskResult>& results);
};

class Executor {
 public:
  virtual ~Executor() = default;  // Calls Shutdown().

  // Queues the task; it starts when a slot is free, in submission order.
  // Never blocks on running work. After Shutdown() the task is reported
  // CANCELLED at once.
  virtual void Submit(v1::Assignment assignment) = 0;

  // Submit() of each task in order, with less overhead per task (one lock
  // and one wake-up for the batch). The default calls Submit() for each.
  virtual void SubmitBatch(std::vector<v1::Assignment> assignments);

  // Assignments of finished tasks, in any state, for a caller that submits
  // batch after batch: filling these again costs less than new messages
  // (theirs keep their allocations). Leaves `spares` empty when there are
  // none; the default never has any.
  virtual void TakeSpentAssignments(std::vector<v1::Assignment>& spares) {
    spares.clear();
  }

  // Stops the job's tasks: queued ones never start, running ones stop at
  // their next cancellation point (async: at once). Each reports CANCELLED.
  virtual void CancelJob(uint64_t job_id) = 0;

  // Waits for every submitted task to finish, then stops the threads.
  // Idempotent.
  virtual void Shutdown() = 0;

  virtual Mode mode() const = 0;
  virtual int slots() const = 0;
};

struct ExecutorOptions {
  Mode mode = Mode::kThread;
  // Tasks that may run at once; serial ignores it (always 1).
  int slots = 1;
  // Written into TaskResult.worker ("local" for in-process pools).
  std::string worker_name = "local";
  // Timestamps started_us/finished_us come from it. Not owned; null means
  // Clock::Real().
  Clock* clock = nullptr;
  // Not owned; must outlive the executor.
  ResultSink* sink = nullptr;
  // The kinds it runs (qfarm/kinds.h); a task of another kind fails. Not
  // owned; must outlive the executor. Null means the built-in kinds.
  const Kinds* kinds = nullptr;
};

std::unique_ptr<Executor> MakeExecutor(const ExecutorOptions& options);

}  // namespace qfarm::executors
