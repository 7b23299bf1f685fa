// The async mode: one Asio event-loop thread ("async") runs up to `slots`
// tasks at once; the rest wait in a FIFO and start as slots free. Nothing
// blocks the loop but cpu work:
//   sleep  waits in a heap of deadlines served by one steady_timer, so a
//          sleeping task costs a heap entry, not a thread or a coroutine
//   http   a C++20 coroutine driving a libcurl transfer on the loop
//          (executors/http_multi.h)
//   echo   runs inline at once (see Kinds::IsInstant())
//   cpu    runs on the loop thread and holds it up until done (inherent to
//          this mode; the auto mode sends it to a pool instead); invalid
//          tasks fail at once
//   other kinds (qfarm/kinds.h): a coroutine form runs as a coroutine on
//          the loop, raced against its deadline and its job's cancellation;
//          a kind with only a blocking form holds up the loop as cpu does
// Results leave the loop in batches: those finished in one loop turn go to
// the sink in one OnResults() call (in messages the sink handed back, see
// ResultBuffer), and until then they still count against the slots.
//
// Execution model: Submit(), SubmitBatch() and CancelJob() post to the loop
// (one post per call); the queue, the in-flight count, the sleep heap, the
// waiting timers and the http transfers belong to the loop thread and need
// no lock. CancelJob() also sets the job's CancelToken directly, so cpu work
// on the loop sees it without waiting for the loop; sleeps and transfers
// are stopped as soon as the loop runs the posted cancel (a cancelled
// transfer leaves curl at once).
//
// Results go to the sink from the loop thread, labelled "async", except a
// Submit() after Shutdown(), reported from the caller's thread. Tasks that
// never started have started_us 0.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "asio/awaitable.hpp"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "asio/steady_timer.hpp"
#include "common/clock.h"
#include "executors/executor.h"
#include "executors/http_multi.h"
#include "executors/kind_runner.h"
#include "executors/sleep_heap.h"
#include "executors/task_kinds.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {

// Thread-safe. Shutdown() and the destructor must not be called from the
// sink (they wait for the loop thread).
class AsyncExecutor final : public Executor, private internal::Loop {
 public:
  // Called on the loop thread just before a task starts running.
  using StartHook = std::function<void(const v1::Assignment&)>;

  // options.mode is kAsync and options.slots >= 1. `on_start_for_testing`
  // may be null.
  explicit AsyncExecutor(const ExecutorOptions& options,
                         StartHook on_start_for_testing = nullptr);
  ~AsyncExecutor() override;

  AsyncExecutor(const AsyncExecutor&) = delete;
  AsyncExecutor& operator=(const AsyncExecutor&) = delete;

  void Submit(v1::Assignment assignment) override;
  void SubmitBatch(std::vector<v1::Assignment> assignments) override;
  void TakeSpentAssignments(std::vector<v1::Assignment>& spares) override;
  void CancelJob(uint64_t job_id) override;
  void Shutdown() override;

  Mode mode() const override { return Mode::kAsync; }
  int slots() const override { return slots_; }

  // For executors built on this one (auto mode), which keep their own
  // JobCancellations: runs `assignment` under `cancel`, a token the caller
  // owns. CancelTasks() then stops it. Do not mix with Submit() and
  // CancelJob() for the same job.
  void SubmitWithToken(v1::Assignment assignment,
                       std::shared_ptr<CancelToken> cancel);
  // SubmitWithToken() of each (assignment, token) in order.
  void SubmitBatchWithTokens(
      std::vector<std::pair<v1::Assignment, std::shared_ptr<CancelToken>>>
          batch);
  // Cancels `cancel` and stops the tasks submitted with it, as CancelJob().
  void CancelTasks(std::shared_ptr<CancelToken> cancel);

 private:
  struct Pending {
    v1::Assignment assignment;
    std::shared_ptr<CancelToken> cancel;
    // Whether `cancel` came from cancels_ (and goes back to it).
    bool own_token = true;
  };

  // Counts the task and posts it to the loop; null `cancel`: one from
  // cancels_.
  void Accept(v1::Assignment assignment, std::shared_ptr<CancelToken> cancel);

  // Tasks posted to the loop in one go, run in place where they can.
  struct Batch {
    std::vector<v1::Assignment> assignments;
    // (end, token): the assignments before `end` (and from the previous
    // run's end) run under `token`.
    std::vector<std::pair<size_t, std::shared_ptr<CancelToken>>> runs;
    // Whether the tokens came from cancels_ (and go back to it).
    bool own_tokens = true;
  };

  // A sleeping task: its started_us and what it ran under.
  struct Sleeping {
    std::unique_ptr<Pending> pending;
    int64_t started_us = 0;
  };

  // Loop thread only.
  void Enqueue(Pending pending);
  void EnqueueBatch(Batch batch);
  void StartMore();
  // Runs an instant task inline if a slot is free; false otherwise (or if
  // it is not instant).
  bool TryRunInstant(v1::Assignment& assignment,
                     const std::shared_ptr<CancelToken>& cancel,
                     bool own_token);
  // Starts a task that is not instant: a sleep joins the heap, an http task
  // gets a coroutine, anything else runs here and now.
  void Start(Pending pending);
  // Puts a sleep task in sleepers_.
  void StartSleep(Pending pending, int64_t started_us);
  // Finishes every sleeper whose deadline passed.
  void OnSleepTimer();
  // Records a finished task's result for the next flush and frees its slot.
  void Complete(const Pending& pending, TaskOutcome outcome,
                int64_t started_us);
  // Delivers the results waiting in done_ (one OnResults call).
  void Flush();
  // Flush() and StartMore() once the loop turn's other handlers have run.
  void ScheduleFlush();
  // Releases a finished task's token, together with the run of tasks
  // sharing it.
  void ReleaseLater(uint64_t job_id, const std::shared_ptr<CancelToken>& cancel,
                    bool own_token);
  void ReleaseTokens();
  void DropCancelled(const CancelToken& cancel);
  asio::awaitable<void> Run(Pending pending);
  asio::awaitable<TaskOutcome> Http(const Pending& pending);
  // A kind's coroutine form.
  asio::awaitable<TaskOutcome> Coroutine(const Pending& pending,
                                         const Kinds::Kind& kind);
  // internal::Loop, for coroutine forms. Loop thread only.
  asio::io_context& io() override { return io_; }
  HttpMulti& http() override;
  // `timer` no longer waits for `cancel`.
  void Unwait(const CancelToken* cancel, asio::steady_timer* timer);
  void ReportNotStarted(const v1::Assignment& assignment,
                        absl::string_view why);

  // Counts `n` results as delivered. Any thread.
  void FinishOne(int64_t n = 1);

  const int slots_;
  const Kinds* const kinds_;
  const std::string worker_name_;
  Clock* const clock_;
  ResultSink* const sink_;
  const StartHook on_start_;

  JobCancellations cancels_;

  absl::Mutex mu_;
  // Submitted tasks whose result has not yet been delivered.
  int64_t unfinished_ ABSL_GUARDED_BY(mu_) = 0;
  // Set by Shutdown(): Submit() refuses new tasks.
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;

  // Loop thread only.
  std::deque<Pending> queue_;
  // Tasks started and not finished (sleeping, in a transfer, running).
  int in_flight_ = 0;
  // Finished tasks' results not yet delivered; they still hold their slots.
  ResultBuffer done_;
  bool flush_scheduled_ = false;
  // The clock reading instant tasks share, and how many more may use it.
  int64_t instant_now_us_ = 0;
  int instant_clock_uses_ = 0;
  // Finished tasks that have not released release_token_ yet.
  std::shared_ptr<CancelToken> release_token_;
  uint64_t release_job_ = 0;
  int64_t release_count_ = 0;
  // Timers that http tasks and coroutine forms wait on, by the token that
  // cancels them.
  absl::flat_hash_map<const CancelToken*,
                      absl::flat_hash_set<asio::steady_timer*>>
      waiting_;

  // Declared after the loop-thread state so that handlers the loop never
  // ran are destroyed first.
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  // Loop thread only: the sleeping tasks.
  SleepHeap<Sleeping> sleepers_{io_, [this] { OnSleepTimer(); }};
  // Loop thread only. Made on the first http task; destroyed on the loop
  // thread by Shutdown().
  std::unique_ptr<HttpMulti> http_;

  // Batches of assignments whose tasks ran in place, for
  // TakeSpentAssignments().
  absl::Mutex spent_mu_;
  std::vector<std::vector<v1::Assignment>> spent_ ABSL_GUARDED_BY(spent_mu_);

  // Serializes Shutdown() calls around the join.
  absl::Mutex join_mu_;
  std::thread loop_thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace qfarm::executors
