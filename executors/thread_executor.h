// The serial and thread modes: a FIFO queue drained by a fixed set of
// threads, each running one task at a time with blocking calls.
//
//   serial  one thread, labelled "serial"
//   thread  `slots` threads, labelled "thread-0".."thread-<slots-1>"
// A label other than the mode's name may be given (the auto mode's cpu pool
// is "cpu": "cpu-0", "cpu-1", ...).
//
// Execution model: Submit() and CancelJob() only touch the queue under a
// mutex; tasks run on the executor's threads. Sleeps wait on the job's
// CancelToken, so CancelJob() wakes them at once; cpu work polls it; http
// transfers poll it every kHttpCancelPollMs (executors/http_task.h).
//
// Results go to the sink from the thread that ran the task, labelled with
// that thread's label. A thread that finds instant tasks (echo, see
// Kinds::IsInstant()) at the head of the queue takes up to kMaxInstantRun of
// them at once (a whole SubmitBatch() of them if it is no longer, else a fair
// share of the queue), runs them back to back and delivers their results in
// one OnResults() call (unless a start hook is set, which sees every task
// start on its own). Tasks that never started (cancelled while queued,
// submitted after Shutdown()) are reported from the thread that called
// CancelJob() or Submit(), with started_us 0 and the label itself
// ("serial", "thread") as the executor label.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "executors/executor.h"
#include "executors/task_kinds.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {

// Thread-safe. Shutdown() and the destructor must not be called from the
// sink (they wait for the sink calls to return).
class ThreadExecutor final : public Executor {
 public:
  // Called on the executor thread just before a task starts running.
  using StartHook = std::function<void(const v1::Assignment&)>;

  // options.mode is kSerial or kThread; for kThread, options.slots >= 1.
  // `on_start_for_testing` may be null. An empty `label` means the mode's
  // name.
  explicit ThreadExecutor(const ExecutorOptions& options,
                          StartHook on_start_for_testing = nullptr,
                          std::string label = "");
  ~ThreadExecutor() override;

  ThreadExecutor(const ThreadExecutor&) = delete;
  ThreadExecutor& operator=(const ThreadExecutor&) = delete;

  void Submit(v1::Assignment assignment) override;
  void SubmitBatch(std::vector<v1::Assignment> assignments) override;
  void TakeSpentAssignments(std::vector<v1::Assignment>& spares) override;
  void CancelJob(uint64_t job_id) override;
  void Shutdown() override;

  Mode mode() const override { return mode_; }
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
  void CancelTasks(const std::shared_ptr<CancelToken>& cancel);

 private:
  // Tasks [previous run's end, end) of a chunk share `cancel`.
  struct Run {
    size_t end = 0;
    std::shared_ptr<CancelToken> cancel;
    // Whether `cancel` came from cancels_ (and goes back to it).
    bool own_token = true;
  };

  // Queued tasks, kept together as submitted: a batch joins the queue, and
  // a thread takes a chunk of instant tasks, without a move per task.
  struct Chunk {
    std::vector<v1::Assignment> items;
    // Ascending ends, the last one items.size().
    std::vector<Run> runs;
    // Every task is instant (Kinds::IsInstant()).
    bool all_instant = false;

    // Appends `assignment`, with `cancel` (which joins the last run if it is
    // the same token).
    void Add(v1::Assignment assignment,
             const std::shared_ptr<CancelToken>& cancel, bool own_token);
  };

  // One task taken from the queue to run on its own.
  struct Queued {
    v1::Assignment assignment;
    std::shared_ptr<CancelToken> cancel;
    // As Run::own_token.
    bool own_token = true;
  };

  // The FIFO of queued tasks, kept as chunks so that a batch built outside
  // the lock joins it in O(1).
  class TaskQueue {
   public:
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    v1::Assignment& front() { return chunks_.front().items[head_]; }
    // The run of front().
    const Run& front_run() const { return chunks_.front().runs[run_head_]; }
    void pop_front();
    void push_back(v1::Assignment assignment,
                   const std::shared_ptr<CancelToken>& cancel, bool own_token);
    void push_chunk(Chunk chunk);
    // Takes the whole front chunk if nothing of it was taken yet, all its
    // tasks are instant and it holds at most `max` of them.
    bool TakeInstantChunk(size_t max, Chunk* out);
    // Takes out the tasks whose token is `cancel`, keeping the others in
    // order.
    std::vector<v1::Assignment> RemoveTasksOf(
        const std::shared_ptr<CancelToken>& cancel);

   private:
    std::deque<Chunk> chunks_;
    // The first item of chunks_.front() not taken yet, and its run.
    size_t head_ = 0;
    size_t run_head_ = 0;
    size_t size_ = 0;
  };

  // Most instant tasks one thread takes from the queue at once.
  static constexpr size_t kMaxInstantRun = 1024;
  // Runs of spent assignments kept for TakeSpentAssignments() until it is
  // first called; then as many as hold kMaxSpentTasks, enough for every
  // task a submitter such as the local pool keeps in flight (its window).
  static constexpr size_t kMaxSpentBatches = 16;
  static constexpr size_t kMaxSpentTasks = 65'536;

  // Queues the task; null `cancel`: one from cancels_.
  void Accept(v1::Assignment assignment, std::shared_ptr<CancelToken> cancel);
  // Queues the batch; a null token in an item: one from cancels_.
  void AcceptBatch(
      std::vector<std::pair<v1::Assignment, std::shared_ptr<CancelToken>>>
          batch);

  // A pool thread: takes tasks until Shutdown() empties the queue.
  void WorkerLoop(const std::string& label);
  // Takes a chunk of instant tasks, or a fair share of the queue's, into
  // `run` (tasks of cancelled jobs into `dropped`). False, taking nothing,
  // when the front task is not instant or a start hook watches.
  bool TakeInstantsLocked(Chunk& run, std::vector<v1::Assignment>& dropped)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs what TakeInstantsLocked() took, but tasks whose job was cancelled
  // since (reported with `dropped` as not started); empties both. Returns
  // how many results went out.
  int64_t RunTaken(Chunk& run, std::vector<v1::Assignment>& dropped,
                   const std::string& label, ResultBuffer& results);
  // Runs `run` (instant tasks taken at once) and delivers their results.
  void RunInstant(Chunk& run, const std::string& label, ResultBuffer& results);
  // Runs a task taken alone, or reports it not started.
  void RunQueued(const Queued& item, bool cancelled_in_queue,
                 const std::string& label);
  // Reports a task that never started as CANCELLED.
  void ReportNotStarted(const v1::Assignment& assignment,
                        absl::string_view why);
  // Counts `n` results as delivered.
  void FinishOne(int64_t n = 1);
  bool HasWorkOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Mode mode_;
  const int slots_;
  const Kinds* const kinds_;
  const std::string label_;
  const std::string worker_name_;
  Clock* const clock_;
  ResultSink* const sink_;
  const StartHook on_start_;

  JobCancellations cancels_;

  absl::Mutex mu_;
  TaskQueue queue_ ABSL_GUARDED_BY(mu_);
  // Submitted tasks whose result has not yet been delivered.
  int64_t unfinished_ ABSL_GUARDED_BY(mu_) = 0;
  // Set by Shutdown(): Submit() refuses new tasks.
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Set once nothing is unfinished: the threads exit.
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  // Assignments of instant tasks that ran, for TakeSpentAssignments().
  absl::Mutex spent_mu_;
  std::vector<std::vector<v1::Assignment>> spent_ ABSL_GUARDED_BY(spent_mu_);
  // Assignments in spent_.
  size_t spent_tasks_ ABSL_GUARDED_BY(spent_mu_) = 0;
  // Whether TakeSpentAssignments() was called.
  bool spent_taken_ ABSL_GUARDED_BY(spent_mu_) = false;

  // Serializes Shutdown() calls around the join.
  absl::Mutex join_mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace qfarm::executors
