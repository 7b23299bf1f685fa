// The coordinator's scheduler: pure logic, no network, no threads of its own.
//
// It keeps the job table, one bounded FIFO queue of tasks across jobs, the
// connected workers with their credits (free slots they granted) and the time
// each was last heard from, and every result. The gRPC service is a shell
// around it: it feeds in events (a job submitted, a worker connected, credits
// granted, a heartbeat, results arrived, a stream ended) and sends out what
// the scheduler decides (TakeDispatches()).
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
// Time: the shell drives it with two timers. Every heartbeat_timeout / 4 it
// calls ExpireSilentWorkers() and closes the streams of the workers returned;
// at NextWakeup() (re-read after every TakeDispatches(), RemoveWorker() and
// ExpireSilentWorkers()) it calls TakeDispatches() again, because a task that
// lost its worker waits out a backoff before it may be dispatched.
//
// Durability: with a journal set (SetJournal()), a final result is readable
// (ReadResults, a job's final state) only once the journal has made it
// durable; without one, as soon as it is recorded. Restore() rebuilds the
// state the journal recovered after a restart.
//
// Thread-safe: every method may be called from any thread (one internal
// mutex, never held while calling out). Behind it, each invariant has one
// owner: the jobs and their counters (JobTable), the kinds in use
// (KindTable), the waiting tasks and their counts (TaskQueue), the workers,
// their kinds and their credits (WorkerPool), and when results may be read
// (ResultGate).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "common/task_spec.h"
#include "coordinator/ids.h"
#include "coordinator/job_table.h"
#include "coordinator/journal_interface.h"
#include "coordinator/kind_table.h"
#include "coordinator/result_gate.h"
#include "coordinator/task_queue.h"
#include "coordinator/worker_pool.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "qfarm/v1/farm.pb.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::coordinator {

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
  // The kinds tasks may have; a task of another kind is refused with
  // INVALID_ARGUMENT. Empty: any valid kind name (a task whose kind no
  // connected worker offers waits for one).
  std::vector<std::string> accepted_kinds = {};
  // A worker that sends nothing (heartbeat, credits or results) for longer
  // than this is declared dead by ExpireSilentWorkers().
  // absl::InfiniteDuration() turns expiry off. Must be positive.
  absl::Duration heartbeat_timeout = absl::Seconds(10);
  // A task that lost its worker in attempt N waits
  // min(retry_backoff_base * 2^(N-1), retry_backoff_max) in the queue before
  // it may be dispatched again. Zero: it may go at once.
  absl::Duration retry_backoff_base = absl::Milliseconds(100);
  absl::Duration retry_backoff_max = absl::Seconds(5);
  // Retention (ReleaseFinished()): a finished job is released this long
  // after its last result was recorded, or sooner, oldest finished first,
  // while finished jobs' results hold more than retain_finished_bytes in all
  // (ApproxBytes()). Infinite and the maximum: finished jobs are kept.
  absl::Duration retain_finished = absl::InfiniteDuration();
  uint64_t retain_finished_bytes = std::numeric_limits<uint64_t>::max();
};

// Tasks to send to one worker in one message. Heap messages (no arena), so
// the stream can take them over without copies.
struct Dispatch {
  WorkerKey worker = 0;
  google::protobuf::RepeatedPtrField<v1::Assignment> assignments;
};

// Results of a job in completion order, from a cursor on.
struct ResultsPage {
  std::vector<v1::TaskResult> results;
  // Cursor to pass next time.
  size_t next_cursor = 0;
  // Every task of the job has a final result and all were returned.
  bool finished = false;
};

// As ResultsPage, without copies: the scheduler's own results. A result is
// never changed once readable and lives as long as the scheduler, so these
// stay valid (and may be read from any thread) after ViewResults() returns.
struct ResultsView {
  std::vector<const v1::TaskResult*> results;
  size_t next_cursor = 0;
  bool finished = false;
  // The results are in the journal's order (the job was recovered or loaded
  // back from it), which stays the same from one load or restart to the
  // next; otherwise in the order this process recorded them. A cursor is a
  // position in one of these orders: a reader that resumes with a cursor of
  // the other starts again from the first result.
  bool journal_order = false;
};

// Workers that run tasks of a cancelled job and must be told to stop them.
struct CancelOutcome {
  uint32_t cancelled = 0;
  std::vector<WorkerKey> workers_to_notify;
};

// What ExpireSilentWorkers() did.
struct Expiry {
  // Workers declared dead, by key: the shell closes their streams.
  std::vector<WorkerKey> workers;
  // Jobs that got new readable (failed) results, so watchers can be woken.
  std::vector<JobId> jobs;
};

struct RecoveredState {
  // By increasing id.
  std::vector<RecoveredJob> jobs;
  // Jobs released earlier, by increasing id (the newest the journal keeps):
  // their ids are not issued again, and asking for one says it was released.
  std::vector<ReleasedJob> released = {};
};

// Counters for metrics, since the scheduler started.
struct SchedulerStats {
  // Final results by kind name and TaskState number (see
  // KindTable::Finished()).
  std::map<std::string, StateCounts> finished;
  // Dispatches of a task after its first (its worker was lost).
  uint64_t retried = 0;
  // Queued to final result, seconds.
  HistogramData latency;
  size_t queued = 0;
  // Finished jobs retained (not released yet), and those of them whose
  // results are on disk only (StoreFinished()).
  size_t finished_jobs = 0;
  size_t stored_jobs = 0;
};

class Scheduler {
 public:
  // `clock` must outlive the scheduler. max_batch and default_max_attempts
  // must be positive.
  explicit Scheduler(Clock* clock, SchedulerOptions options = {});
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();

  // Accepts every task or none. A task names its kind by name, or by index
  // in `kinds` (the job's kind table, see v1::Task.kind_index).
  // INVALID_ARGUMENT for an empty job or a bad task (the message names its
  // index; an index past the table is one), or a kind outside accepted_kinds
  // (the message names the kind and the list); RESOURCE_EXHAUSTED when the
  // queue cannot take the whole job (the message says how full it is) or
  // the job brings one kind too many (KindTable::kMaxTaskKinds). A task
  // whose kind no connected worker offers waits for one.
  //
  // `on_accepted`, if set, runs under the scheduler's lock once the job is
  // accepted and before any of its tasks can be dispatched (so a journal
  // records the job before any of its results). It must not block or call
  // into the scheduler: whatever it needs of the tasks (a journal's encoding)
  // is prepared before the call, outside the lock.
  using AcceptedHook = std::function<void(JobId, int64_t created_us)>;
  // `client` names who submitted it (JobInfo.client). With `hold`, the job
  // is accepted held (see HoldJob()), for a caller that streams its results
  // from the start.
  absl::StatusOr<JobId> SubmitJob(std::vector<v1::Task> tasks,
                                  const std::vector<std::string>& kinds = {},
                                  const AcceptedHook& on_accepted = nullptr,
                                  std::string client = {}, bool hold = false);

  // Makes final results go through `journal` before they are readable:
  // every result recorded from now on (by RecordResults, RemoveWorker,
  // ExpireSilentWorkers or CancelJob) is appended to it outside the lock, and
  // becomes readable once that append and every earlier one are durable; then
  // `on_readable` is called (from the journal's thread, without the lock)
  // with the jobs that got readable results, so their watchers can be woken.
  // Those methods then return no jobs. An append that fails leaves its
  // results, and every later one, unreadable: the journal reports the error
  // and the coordinator must stop. `on_readable` is then called with every
  // job that has results waiting, and reading one of them past its readable
  // results is UNAVAILABLE, so no reader waits for results that never come.
  // Call once, before the first SubmitJob() and AddWorker(); the journal and
  // `on_readable`'s targets must outlive every append (close the journal before
  // destroying the scheduler).
  void SetJournal(ResultJournal* journal,
                  std::function<void(const std::vector<JobId>&)> on_readable);

  // Rebuilds the jobs a journal recovered after a restart: recorded results
  // are kept (and readable at once), the tasks of a cancelled job that have
  // none are recorded CANCELLED, and every other task is queued again, in
  // job and index order, its attempt count continuing from the attempts
  // journaled for it (RecoveredJob::attempts). New job ids continue after
  // the largest, released ones included, and the released jobs are
  // remembered as such (see ReleaseFinished()). Queued tasks may exceed
  // max_queued. FAILED_PRECONDITION unless the scheduler is empty (no job, no
  // worker); INVALID_ARGUMENT, naming the job and the task, for an inconsistent
  // state (a repeated job id, a job without tasks, a result for an index out of
  // range or a second one for an index, a result whose state is not final),
  // in which case nothing is restored.
  absl::Status Restore(RecoveredState state);

  // A worker connection opened, offering desc.kinds (valid names; repeats
  // are ignored): it is sent tasks of those kinds only. It gets no task
  // before AddCredits(). Counts as hearing from it.
  WorkerKey AddWorker(WorkerDesc desc);

  // The worker has `credits` more free slots. Unknown keys are ignored.
  // Counts as hearing from it.
  void AddCredits(WorkerKey worker, uint32_t credits);

  // The worker said it is alive. False for an unknown key (the worker was
  // removed or declared dead: the shell should close its stream).
  bool Heartbeat(WorkerKey worker);

  // The worker's connection ended: its unfinished tasks go back to the queue
  // with their attempt count raised, each eligible for dispatch after the
  // retry backoff, ahead of tasks never dispatched; a task that has used its
  // attempts fails instead ("worker lost while running the task 3 times
  // (attempt 3 of 3); last worker: w3 (connection ended)"). Unknown keys are
  // ignored. Returns the jobs that got new readable (failed) results, so
  // their watchers can be woken. Requeued tasks may take the queue past
  // max_queued: accepted tasks are never dropped.
  std::vector<JobId> RemoveWorker(WorkerKey worker);

  // Declares dead every worker not heard from (AddWorker, AddCredits,
  // Heartbeat, RecordResults) for longer than heartbeat_timeout, with the
  // effect of RemoveWorker(); the last worker named in a failed task's error
  // is then "w3 (silent for 10.5s)". Results it sends later are dropped. The
  // shell calls this periodically (every heartbeat_timeout / 4, say) and
  // closes the returned workers' streams.
  Expiry ExpireSilentWorkers();

  // Hands queued tasks that are eligible now (not waiting out a retry
  // backoff) to workers with credits that offer their kinds, consuming one
  // credit per task, at most max_batch per Dispatch. The caller sends each
  // batch. Among the tasks a worker offers, retried tasks go first, in the
  // order they became eligible, then the rest in FIFO order; tasks of a
  // kind no worker with credits offers wait without holding up the others.
  // Workers take turns, each at most an even share of what is eligible per
  // turn, so a worker with many credits does not starve another; the first
  // turn rotates between calls. Each worker gets its tasks in queue order in
  // as few Dispatches as max_batch allows. Assignments carry attempt 1 on
  // the first dispatch.
  std::vector<Dispatch> TakeDispatches();

  // Takes back assignments of Dispatches that were sent (leaving `sent`
  // empty), for TakeDispatches() to fill again: they keep their
  // allocations. Keeps a bounded number; frees the rest.
  void RecycleAssignments(
      google::protobuf::RepeatedPtrField<v1::Assignment>* sent);

  // When the next task waiting out a retry backoff becomes eligible: the
  // shell calls TakeDispatches() then (it may be early, never late).
  // absl::InfiniteFuture() when no task waits.
  absl::Time NextWakeup() const;

  // Records results sent by `worker`. A result for a task not running on
  // that worker in that attempt (late, duplicate, never assigned, or from a
  // worker declared dead) is dropped. A result whose state is not final
  // (unspecified, queued, running or unknown) is recorded as FAILED with an
  // error saying so, and so is a value over limits.max_value_bytes.
  // Results do not return credits. Counts as hearing from
  // the worker. Returns the jobs that got new readable results (each once),
  // so their watchers can be woken.
  //
  // `violation`, if set, receives a description of the first result for a
  // task this worker was never given (unknown job, index out of range, an
  // attempt not yet made, or the current attempt running on another
  // worker): a protocol error the caller should end the stream for.
  std::vector<JobId> RecordResults(WorkerKey worker,
                                   std::vector<v1::TaskResult> results,
                                   std::string* violation = nullptr);
  // RecordResults(), taking the messages out of `results` (left empty)
  // instead of moving their contents: a parsed batch is recorded without
  // copies. `results` must not be on an arena.
  std::vector<JobId> RecordResultBatch(
      WorkerKey worker,
      google::protobuf::RepeatedPtrField<v1::TaskResult>* results,
      std::string* violation = nullptr);

  // Readable results recorded at or after `cursor` (completion order), at
  // most `max_results`. A cursor past the end reads from the end. NOT_FOUND
  // for an unknown job. A stored job (StoreFinished()) is first loaded back
  // from the journal, without the lock: the call then blocks on its I/O, and
  // fails with the journal's error if the results cannot be read back.
  absl::StatusOr<ResultsPage> ReadResults(JobId job, size_t cursor,
                                          size_t max_results);
  // ReadResults() without copying the results; see ResultsView.
  absl::StatusOr<ResultsView> ViewResults(JobId job, size_t cursor,
                                          size_t max_results);

  // The job's counters and state: RUNNING until every task has a readable
  // final result, then DONE if all are OK, CANCELLED if CancelJob()
  // cancelled some, FAILED otherwise. The counters include results recorded
  // but not durable yet; `unserved` counts its queued tasks whose kind no
  // connected worker offers, by kind name. NOT_FOUND for an unknown job.
  absl::StatusOr<v1::JobInfo> GetJob(JobId job) const;

  // One page of ListJobs(): GetJob()'s view of each job (without
  // `unserved`), newest first.
  struct JobsPage {
    std::vector<v1::JobInfo> jobs;
    // Where the next page starts (the `before` of the next call); 0 when no
    // job follows.
    JobId next_before = 0;
    // The clock when the list was made.
    int64_t as_of_us = 0;
  };
  // The jobs whose ids are below `before` (0: every job), highest id first,
  // in `state` (JOB_STATE_UNSPECIFIED: any): at most `max_jobs` of them,
  // from at most `max_scanned` jobs looked at, so one call holds the lock
  // for a bounded time however few jobs match.
  JobsPage ListJobs(v1::JobState state, JobId before, size_t max_jobs,
                    size_t max_scanned) const;

  // Releases finished jobs past the retention settings (SchedulerOptions):
  // their results and bookkeeping are freed (outside the lock), they leave
  // ListJobs(), and GetJob(), ViewResults(), CancelJob() and the rest answer
  // NOT_FOUND for them with a message that says when the job finished and
  // under which setting it was released (for the newest kMaxReleased
  // released jobs; an older one is still told from an id never issued).
  // A job is released only once every result is readable, and never while
  // held (HoldJob()). With a journal, the release is appended to it. Returns
  // what was released, oldest finished first. The shell calls it
  // periodically (every second, say).
  std::vector<ReleasedJob> ReleaseFinished();
  static constexpr size_t kMaxReleased = 100'000;

  // With a journal that stores results (ResultJournal::StoresResults()):
  // drops from memory the results, tasks and bookkeeping of finished jobs
  // whose results are all readable and that nobody holds, and appends each
  // one's summary to the journal (once per job), so that a finished job
  // costs memory only while it is read, and a restart restores it from its
  // summary. GetJob(), ListJobs(), CancelJob() and retention work on from the
  // summary; ViewResults(), ReadResults() and GetTaskState() load the
  // results back. Returns how many jobs it stored. The shell calls it
  // periodically (after ReleaseFinished(), say).
  size_t StoreFinished();

  // Keeps the job from being released or stored until UnholdJob(): for a
  // reader that streams its results (a watch, a session), whose pointers from
  // ViewResults() must stay valid. Holds count. False for an unknown or
  // released job.
  bool HoldJob(JobId job);
  void UnholdJob(JobId job);

  // Those of `jobs` that are RUNNING (as GetJob() tells), in the same
  // order; unknown ids are left out. One lock for all.
  std::vector<JobId> Unfinished(std::vector<JobId> jobs) const;

  // Where one task stands: QUEUED (waiting, perhaps out a retry backoff),
  // RUNNING, or its final state (recorded, perhaps not durable yet).
  // NOT_FOUND for an unknown job; INVALID_ARGUMENT for an index past the
  // job's tasks.
  absl::StatusOr<v1::TaskState> GetTaskState(JobId job, uint32_t index);

  // Records every unfinished task of the job as CANCELLED. Queued tasks never
  // start; workers running some are returned so they can be told. Results
  // arriving later for those tasks are dropped, and they no longer count as
  // the workers' in-flight tasks (the workers still hold the slots until they
  // grant them back with AddCredits). A finished job is left as it is
  // (cancelled = 0). With a journal, the cancellation is appended to it and
  // the CANCELLED results are readable once it is durable. NOT_FOUND for an
  // unknown job.
  absl::StatusOr<CancelOutcome> CancelJob(JobId job);

  // The connected workers, in connection order, with the kinds they offer.
  std::vector<v1::WorkerInfo> ListWorkers() const;

  SchedulerStats Stats() const;

  // Tasks waiting for a worker, including those waiting out a backoff.
  size_t queued() const;

 private:
  // What one change recorded: the jobs with new final results and, in
  // journal mode, copies of those results under one ticket.
  struct Changes {
    std::vector<JobId> jobs;
    std::vector<v1::TaskResult> results;
    // Journal mode: attempts used by tasks queued again after losing their
    // worker (job_id, index and attempt only).
    std::vector<v1::TaskResult> attempts;
    // 0 while nothing needs journaling.
    uint64_t ticket = 0;
  };

  uint32_t MaxAttempts(const v1::Task& task) const;
  // NOT_FOUND for a job not in the table: released (and when), or unknown.
  absl::Status NotFound(JobId job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Notes a job as released, forgetting the oldest beyond kMaxReleased.
  void RememberReleased(ReleasedJob job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts a job whose tasks all have results in the release order (and in
  // memory, among those StoreFinished() looks at).
  void AddFinished(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loads a stored job's results back from the journal, without the lock;
  // OK at once for a job that is not stored.
  absl::Status LoadStored(JobId id) ABSL_LOCKS_EXCLUDED(mu_);
  // `read(job)` under the lock, for a job loaded back first if it is stored.
  // NOT_FOUND for an unknown or released job.
  template <typename T>
  absl::StatusOr<T> ReadLoaded(
      JobId id, absl::FunctionRef<absl::StatusOr<T>(const Job&)> read)
      ABSL_LOCKS_EXCLUDED(mu_);
  // OK if tasks of `kind` are accepted (SchedulerOptions::accepted_kinds).
  absl::Status CheckAccepted(absl::string_view kind) const;
  // Drops `refs` references to `kind`; a kind no longer in use leaves the
  // queue too.
  void ReleaseKind(KindId kind, uint64_t refs = 1)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills `info.unserved` for `job`.
  void AddUnserved(const Job& job, v1::JobInfo& info) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration Backoff(uint32_t attempt) const;
  // Whether the task of `ref` is still QUEUED; `cache` speeds up the job
  // lookup of runs of one job.
  bool IsQueued(const TaskRef& ref, Job*& cache)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the final result of a queued or running task and notes it in
  // `changes` (for the journal, when there is one).
  void Finish(Job& job, uint32_t index, std::unique_ptr<v1::TaskResult> result,
              int64_t now_us, Changes& changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends a change that may have recorded results: holds its results behind
  // its journal ticket and returns the jobs to report as changed now.
  std::vector<JobId> Commit(Changes& changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends the results in `changes` to `journal` (if any), outside the lock;
  // as a cancellation of `cancelled_job` when it is not 0.
  void SendToJournal(ResultJournal* journal, Changes changes,
                     JobId cancelled_job = 0) ABSL_LOCKS_EXCLUDED(mu_);
  // The journal made ticket `ticket` durable (or failed to).
  void OnDurable(uint64_t ticket, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Removes the worker; requeues or fails its tasks. `reason` ends the
  // failed tasks' errors.
  void RemoveWorkerLocked(WorkerKey key, const std::string& reason,
                          int64_t now_us, Changes& changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `result`, sent by `worker`, is for a task running there in
  // that attempt; a result it could never have been given goes to
  // `violation` (the first one only).
  bool Accepts(const Worker& worker, const v1::TaskResult& result, Job*& job,
               std::string* violation) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills `out` with up to `count` queued tasks for `worker`, in Dispatches
  // of at most max_batch; `open` is the index in `out` of its latest one.
  void Assign(Worker& worker, size_t count, int64_t now_us,
              std::vector<Dispatch>& out, size_t& open, Job*& cache)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An assignment appended to `to`: a spare one if there is one.
  v1::Assignment& NewAssignment(
      google::protobuf::RepeatedPtrField<v1::Assignment>& to)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const SchedulerOptions options_;
  mutable absl::Mutex mu_;
  JobTable jobs_ ABSL_GUARDED_BY(mu_);
  KindTable kinds_ ABSL_GUARDED_BY(mu_);
  TaskQueue queue_ ABSL_GUARDED_BY(mu_);
  WorkerPool workers_ ABSL_GUARDED_BY(mu_);
  // Journal mode (SetJournal()): when recorded results become readable.
  ResultGate gate_ ABSL_GUARDED_BY(mu_);
  ResultJournal* journal_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::function<void(const std::vector<JobId>&)> on_readable_
      ABSL_GUARDED_BY(mu_);
  SchedulerStats stats_ ABSL_GUARDED_BY(mu_);
  // Finished jobs by (finished_us, id): the order ReleaseFinished() takes
  // them in; and the bytes their results hold.
  std::set<std::pair<int64_t, JobId>> finished_ ABSL_GUARDED_BY(mu_);
  uint64_t finished_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Finished jobs whose results are in memory: StoreFinished() looks at
  // these (a released one leaves at its next look).
  std::vector<JobId> in_memory_finished_ ABSL_GUARDED_BY(mu_);
  // Jobs in the table that are stored.
  size_t stored_jobs_ ABSL_GUARDED_BY(mu_) = 0;
  // The newest kMaxReleased released jobs, and their ids in release order.
  absl::flat_hash_map<JobId, ReleasedJob> released_ ABSL_GUARDED_BY(mu_);
  std::deque<JobId> released_order_ ABSL_GUARDED_BY(mu_);
  // Sent assignments to fill again (RecycleAssignments()).
  std::vector<std::unique_ptr<v1::Assignment>> spare_assignments_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace qfarm::coordinator
