// The auto mode: the worker chooses where each task runs. Kinds that run on
// a loop (sleep, http, echo, kinds with a coroutine form:
// Kinds::Kind::runs_on_loop()), invalid tasks and kinds not offered go to an
// AsyncExecutor's event loop ("async"); the others (cpu, kinds with only a
// blocking form) go to a ThreadExecutor sized to the cores ("cpu-0"..
// "cpu-<N-1>", N = min(hardware threads, slots)). A long cpu task never holds
// up the loop, and thousands of sleeps never occupy the pool.
//
//   AutoExecutor executor({.mode = Mode::kAuto, .slots = 1000, .sink = &sink});
//
// `slots` bounds the tasks in flight across both: beyond it, tasks wait here
// in submission order and are handed on as results come back.
//
// Execution model: composes the two executors, handing each task on with a
// CancelToken from this executor's JobCancellations, so CancelJob() reaches
// exactly the tasks submitted before it wherever they are. Submit() and
// CancelJob() take a mutex briefly and never block on running work. Results
// are relayed from the sub-executors' threads (the loop, a cpu thread, or
// the thread that called CancelJob()). Tasks that never reached either
// (cancelled while waiting here, submitted after Shutdown()) are labelled
// "auto" and have started_us 0.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "executors/async_executor.h"
#include "executors/executor.h"
#include "executors/task_kinds.h"
#include "executors/thread_executor.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {

// Thread-safe. Shutdown() and the destructor must not be called from the
// sink (they wait for the sub-executors' threads).
class AutoExecutor final : public Executor {
 public:
  // Called on the thread that runs the task just before it starts.
  using StartHook = std::function<void(const v1::Assignment&)>;

  // options.mode is kAuto and options.slots >= 1. `on_start_for_testing`
  // may be null.
  explicit AutoExecutor(const ExecutorOptions& options,
                        StartHook on_start_for_testing = nullptr);
  ~AutoExecutor() override;

  AutoExecutor(const AutoExecutor&) = delete;
  AutoExecutor& operator=(const AutoExecutor&) = delete;

  void Submit(v1::Assignment assignment) override;
  void SubmitBatch(std::vector<v1::Assignment> assignments) override;
  void CancelJob(uint64_t job_id) override;
  void Shutdown() override;

  Mode mode() const override { return Mode::kAuto; }
  int slots() const override { return slots_; }

  // Threads of the cpu pool.
  int cpu_threads() const { return cpu_->slots(); }

  // The label of tasks that never reached a sub-executor.
  static constexpr absl::string_view kLabel = "auto";

 private:
  // Hands the sub-executors' results back to the AutoExecutor.
  class Relay : public ResultSink {
   public:
    explicit Relay(AutoExecutor* owner) : owner_(owner) {}
    void OnResult(v1::TaskResult result) override {
      owner_->OnSubResult(std::move(result));
    }
    void OnResults(std::vector<v1::TaskResult>& results) override {
      owner_->OnSubResults(results);
    }

   private:
    AutoExecutor* const owner_;
  };

  struct Waiting {
    v1::Assignment assignment;
    std::shared_ptr<CancelToken> cancel;
  };
  // (job, index, attempt).
  using TaskKey = std::tuple<uint64_t, uint32_t, uint32_t>;

  static TaskKey KeyOf(const v1::Assignment& assignment);
  // Records that `waiting` is handed on.
  void Track(const Waiting& waiting) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the task goes to the cpu pool.
  bool OnPool(const v1::Assignment& assignment) const;
  // Hands a task to the executor for its kind.
  void Forward(Waiting waiting);
  // Hands tasks on, one batch per sub-executor.
  void ForwardBatch(std::vector<Waiting> batch);
  void OnSubResult(v1::TaskResult result);
  void OnSubResults(std::vector<v1::TaskResult>& results);
  void ReportNotStarted(const v1::Assignment& assignment,
                        absl::string_view why);
  // Counts `n` results as delivered.
  void FinishOne(int64_t n = 1);

  const int slots_;
  const Kinds* const kinds_;
  const std::string worker_name_;
  Clock* const clock_;
  ResultSink* const sink_;

  JobCancellations cancels_;

  absl::Mutex mu_;
  // Tasks beyond `slots_`, in submission order.
  std::deque<Waiting> queue_ ABSL_GUARDED_BY(mu_);
  // Tasks handed on whose result has not come back, with their tokens (to
  // release); a vector in case one key is submitted twice.
  absl::flat_hash_map<TaskKey,
                      absl::InlinedVector<std::shared_ptr<CancelToken>, 1>>
      forwarded_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Submitted tasks whose result has not yet been delivered.
  int64_t unfinished_ ABSL_GUARDED_BY(mu_) = 0;
  // Set by Shutdown(): Submit() refuses new tasks.
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;

  // Declared before the executors that deliver to it.
  Relay relay_{this};
  std::unique_ptr<AsyncExecutor> io_;
  std::unique_ptr<ThreadExecutor> cpu_;
};

}  // namespace qfarm::executors
