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
#include <string>
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
  TaskLimits limits;
};

struct WorkerDesc {
  std::string worker_id;
  std::string mode;
  uint32_t slots = 0;
  std::string peer;
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
  explicit Scheduler(Clock* clock, SchedulerOptions options = {});
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

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
  // used their attempts. Unknown keys are ignored.
  void RemoveWorker(WorkerKey worker);

  // Hands queued tasks to workers with credits, consuming one credit per
  // task, at most max_batch per Dispatch. The caller sends each batch.
  std::vector<Dispatch> TakeDispatches();

  // Records results sent by `worker`. A result for a task not running on
  // that worker in that attempt (late, duplicate or never assigned) is
  // dropped. Returns the jobs that got new results, so their watchers can be
  // woken.
  std::vector<JobId> RecordResults(WorkerKey worker,
                                   std::vector<v1::TaskResult> results);

  // Results recorded at or after `cursor` (completion order), at most
  // `max_results`. NOT_FOUND for an unknown job.
  absl::StatusOr<ResultsPage> ReadResults(JobId job, size_t cursor,
                                          size_t max_results) const;

  // NOT_FOUND for an unknown job.
  absl::StatusOr<v1::JobInfo> GetJob(JobId job) const;

  // Records every unfinished task of the job as CANCELLED. Queued tasks never
  // start; workers running some are returned so they can be told. Results
  // arriving later for those tasks are dropped. NOT_FOUND for an unknown job.
  absl::StatusOr<CancelOutcome> CancelJob(JobId job);

  std::vector<v1::WorkerInfo> ListWorkers() const;

  // Tasks waiting for a worker.
  size_t queued() const;

 private:
  // Implementation-defined; see scheduler.cc.
  struct TaskEntry;
  struct Job;
  struct Worker;

  Clock* const clock_;
  const SchedulerOptions options_;
  mutable absl::Mutex mu_;
  // (members are the implementer's choice; keep them ABSL_GUARDED_BY(mu_))
};

}  // namespace qfarm::coordinator
