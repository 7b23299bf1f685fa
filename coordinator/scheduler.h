// The coordinator's scheduler: pure logic, no network, no threads of its own.
//
// It keeps the job table, one bounded FIFO queue of tasks across jobs, the
// connected workers with their credits (free slots they granted), and every
// result. The gRPC service is a shell around it: it feeds in events (a job
// submitted, a worker connected, credits granted, results arrived, a stream
// ended) and sends out what the scheduler decides (TakeDispatches()).
//
//   Scheduler scheduler(clock, {.max_queued = 1'000'000});
//   auto job = scheduler.SubmitJob(std::move(tasks));
//   WorkerKey w = scheduler.AddWorker({.worker_id = "w1", .mode = "thread",
//                                      .slots = 4});
//   scheduler.AddCredits(w, 4);
//   for (Dispatch& d : scheduler.TakeDispatches()) Send(d.worker, d.batch);
//   scheduler.RecordResults(w, std::move(results));
//   auto page = scheduler.ReadResults(*job, cursor, 1000);
//
// Thread-safe: every method may be called from any thread (one internal
// mutex, never held while calling out).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/task_spec.h"
#include "qfarm/v1/farm.pb.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::coordinator {

using JobId = uint64_t;
// Identifies one connection of a worker; never reused.
using WorkerKey = uint64_t;

struct SchedulerOptions {
  // Tasks waiting for a worker, across all jobs. A job that does not fit
  // whole is refused with RESOURCE_EXHAUSTED.
  size_t max_queued = 1'000'000;
  // Attempts for tasks whose max_attempts is 0.
  uint32_t default_max_attempts = 3;
  // Most assignments in one Dispatch.
  size_t max_batch = 1000;
  // (`= {}` lets designated initializers omit it under
  // -Wmissing-field-initializers.)
  TaskLimits limits = {};
};

// Fields default to empty, so designated initializers may omit any.
struct WorkerDesc {
  std::string worker_id = {};
  std::string mode = {};
  uint32_t slots = 0;
  std::string peer = {};
};

// Tasks to send to one worker in one message.
struct Dispatch {
  WorkerKey worker = 0;
  std::vector<v1::Assignment> assignments;
};

// Results of a job in completion order, from a cursor on.
struct ResultsPage {
  std::vector<v1::TaskResult> results;
  // Cursor to pass next time.
  size_t next_cursor = 0;
  // Every task of the job has a final result and all were returned.
  bool finished = false;
};

// Workers that run tasks of a cancelled job and must be told to stop them.
struct CancelOutcome {
  uint32_t cancelled = 0;
  std::vector<WorkerKey> workers_to_notify;
};

class Scheduler {
 public:
  // `clock` must outlive the scheduler. max_batch and default_max_attempts
  // must be positive.
  explicit Scheduler(Clock* clock, SchedulerOptions options = {});
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();

  // Accepts every task or none. INVALID_ARGUMENT for an empty job or a bad
  // task (the message names its index); RESOURCE_EXHAUSTED when the queue
  // cannot take the whole job (the message says how full it is).
  absl::StatusOr<JobId> SubmitJob(std::vector<v1::Task> tasks);

  // A worker connection opened. It gets no task before AddCredits().
  WorkerKey AddWorker(WorkerDesc desc);

  // The worker has `credits` more free slots. Unknown keys are ignored.
  void AddCredits(WorkerKey worker, uint32_t credits);

  // The worker's connection ended: its unfinished tasks go back to the front
  // of the queue with their attempt count raised, or fail when they have
  // used their attempts. Unknown keys are ignored. Returns the jobs that got
  // new (failed) results, so their watchers can be woken. Requeued tasks may
  // take the queue past max_queued: accepted tasks are never dropped.
  std::vector<JobId> RemoveWorker(WorkerKey worker);

  // Hands queued tasks to workers with credits, consuming one credit per
  // task, at most max_batch per Dispatch. The caller sends each batch.
  // Workers take turns, each at most an even share of what is queued per
  // turn, so a worker with many credits does not starve another; the first
  // turn rotates between calls. Each worker gets its tasks in queue order in
  // as few Dispatches as max_batch allows. Assignments carry attempt 1 on
  // the first dispatch.
  std::vector<Dispatch> TakeDispatches();

  // Records results sent by `worker`. A result for a task not running on
  // that worker in that attempt (late, duplicate or never assigned) is
  // dropped. A result whose state is not final (unspecified, queued, running
  // or unknown) is recorded as FAILED with an error saying so. Results do not
  // return credits. Returns the jobs that got new results (each once), so
  // their watchers can be woken.
  std::vector<JobId> RecordResults(WorkerKey worker,
                                   std::vector<v1::TaskResult> results);

  // Results recorded at or after `cursor` (completion order), at most
  // `max_results`. A cursor past the end reads from the end. NOT_FOUND for an
  // unknown job.
  absl::StatusOr<ResultsPage> ReadResults(JobId job, size_t cursor,
                                          size_t max_results) const;

  // The job's counters and state: RUNNING until every task has a final
  // result, then DONE if all are OK, CANCELLED if CancelJob() cancelled some,
  // FAILED otherwise. NOT_FOUND for an unknown job.
  absl::StatusOr<v1::JobInfo> GetJob(JobId job) const;

  // Records every unfinished task of the job as CANCELLED. Queued tasks never
  // start; workers running some are returned so they can be told. Results
  // arriving later for those tasks are dropped, and they no longer count as
  // the workers' in-flight tasks (the workers still hold the slots until they
  // grant them back with AddCredits). A finished job is left as it is
  // (cancelled = 0). NOT_FOUND for an unknown job.
  absl::StatusOr<CancelOutcome> CancelJob(JobId job);

  // The connected workers, in connection order.
  std::vector<v1::WorkerInfo> ListWorkers() const;

  // Tasks waiting for a worker.
  size_t queued() const;

 private:
  // Implementation-defined; see scheduler.cc.
  struct TaskEntry;
  struct Job;
  struct Worker;

  // One task of one job; what the queue and the workers' in-flight sets hold.
  struct TaskRef {
    JobId job = 0;
    uint32_t index = 0;

    friend bool operator==(const TaskRef&, const TaskRef&) = default;
    template <typename H>
    friend H AbslHashValue(H h, const TaskRef& ref) {
      return H::combine(std::move(h), ref.job, ref.index);
    }
  };

  uint32_t MaxAttempts(const v1::Task& task) const;
  // Takes the next live task off the queue; `cache` speeds up the job
  // lookup. The queue must hold a live task (queued_ > 0).
  std::pair<Job*, uint32_t> PopQueued(Job*& cache)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops cancelled entries once they outnumber the live ones.
  void MaybeCompactQueue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const SchedulerOptions options_;
  mutable absl::Mutex mu_;
  JobId next_job_id_ ABSL_GUARDED_BY(mu_) = 1;
  WorkerKey next_worker_key_ ABSL_GUARDED_BY(mu_) = 1;
  // Jobs are kept for as long as the scheduler lives.
  absl::flat_hash_map<JobId, std::unique_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  // Ordered by key, that is by connection time.
  std::map<WorkerKey, std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  // Tasks waiting, oldest first; also holds `stale_` entries of tasks
  // cancelled while queued, skipped when met.
  std::deque<TaskRef> queue_ ABSL_GUARDED_BY(mu_);
  // Live entries of queue_.
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  size_t stale_ ABSL_GUARDED_BY(mu_) = 0;
  // Where the next TakeDispatches() starts its round-robin.
  WorkerKey next_first_worker_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace qfarm::coordinator
