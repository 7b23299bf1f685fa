// The async mode: one Asio event-loop thread ("async") runs up to `slots`
// tasks at once as C++20 coroutines; the rest wait in a FIFO and start as
// slots free. Sleeps are steady_timers and http GETs are libcurl transfers
// driven by the loop (worker/http_multi.h), so thousands of sleeping or
// downloading tasks cost one thread. cpu work runs on the loop thread and
// holds it up until done (inherent to this mode; the auto mode sends it to
// a pool instead); echo and invalid tasks finish at once.
//
// Execution model: Submit() and CancelJob() post to the loop; the queue,
// the in-flight count, the waiting timers and the http transfers belong to
// the loop thread and need no lock. CancelJob() also sets the job's
// CancelToken directly, so cpu work on the loop sees it without waiting for
// the loop; sleeps and transfers are stopped as soon as the loop runs the
// posted cancel (a cancelled transfer leaves curl at once).
//
// Results go to the sink from the loop thread, labelled "async", except a
// Submit() after Shutdown(), reported from the caller's thread. Tasks that
// never started have started_us 0.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "asio/awaitable.hpp"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "asio/steady_timer.hpp"
#include "common/clock.h"
#include "qfarm/v1/task.pb.h"
#include "worker/executor.h"
#include "worker/http_multi.h"
#include "worker/task_kinds.h"

namespace qfarm::worker {

// Thread-safe. Shutdown() and the destructor must not be called from the
// sink (they wait for the loop thread).
class AsyncExecutor final : public Executor {
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

  // Loop thread only.
  void Enqueue(Pending pending);
  void StartMore();
  void DropCancelled(const CancelToken& cancel);
  asio::awaitable<void> Run(Pending pending);
  asio::awaitable<TaskOutcome> Sleep(const Pending& pending);
  asio::awaitable<TaskOutcome> Http(const Pending& pending);
  // `timer` no longer waits for `cancel`.
  void Unwait(const CancelToken* cancel, asio::steady_timer* timer);
  void ReportNotStarted(const v1::Assignment& assignment,
                        absl::string_view why);

  // Counts one result as delivered. Any thread.
  void FinishOne();

  const int slots_;
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
  int in_flight_ = 0;
  // Timers that sleeping tasks and http tasks wait on, by the token that
  // cancels them.
  absl::flat_hash_map<const CancelToken*,
                      absl::flat_hash_set<asio::steady_timer*>>
      waiting_;

  // Declared after the loop-thread state so that handlers the loop never
  // ran are destroyed first.
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  // Loop thread only. Made on the first http task; destroyed on the loop
  // thread by Shutdown().
  std::unique_ptr<HttpMulti> http_;

  // Serializes Shutdown() calls around the join.
  absl::Mutex join_mu_;
  std::thread loop_thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace qfarm::worker
