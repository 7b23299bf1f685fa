// The scheduler's jobs: each job's tasks, where each task stands, its final
// results in completion order, and its counters. A Job keeps its counters
// equal to the states of its tasks: they change only through its methods.
//
// Part of the Scheduler (coordinator/scheduler.h), under its mutex:
// thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "coordinator/ids.h"
#include "qfarm/v1/farm.pb.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::coordinator {

// What the scheduler knows of one task besides its spec. Kept small: a queue
// of a million tasks holds a million of these.
struct TaskEntry {
  int64_t queued_us = 0;
  // Of the latest attempt; 0 before the first.
  int64_t dispatched_us = 0;
  // Runs the current attempt while RUNNING; 0 otherwise.
  WorkerKey worker = 0;
  // Attempts dispatched so far: the running one while RUNNING.
  uint32_t attempt = 0;
  v1::TaskState state = v1::TASK_STATE_QUEUED;
  // QUEUED and waiting out a retry backoff (TaskQueue's delayed tasks).
  bool delayed = false;
  // The task's kind while it is not final (the scheduler's KindTable).
  KindId kind = 0;
};

struct Job {
  JobId id = 0;
  int64_t created_us = 0;
  // When the last task got its final result; 0 before.
  int64_t finished_us = 0;
  // CancelJob() cancelled at least one task.
  bool cancelled = false;
  // Who submitted it (JobInfo.client); empty when unknown.
  std::string client;
  // By index. A task's spec is released once it has its final result.
  std::vector<v1::Task> tasks;
  std::vector<TaskEntry> entries;
  // Final results in recording order; one per index. Never changed once
  // recorded, and never moved: Scheduler::ViewResults() hands out pointers
  // to them.
  std::deque<std::unique_ptr<v1::TaskResult>> results;
  uint32_t queued = 0;
  uint32_t running = 0;
  uint32_t ok = 0;
  uint32_t failed = 0;
  uint32_t timed_out = 0;
  uint32_t cancelled_tasks = 0;
  // About how many bytes `results` holds (ApproxBytes() of each).
  uint64_t result_bytes = 0;
  // Readers (watch streams, sessions) that keep it from being released
  // (Scheduler::HoldJob()).
  uint32_t holds = 0;
  // Journal mode: for each ticket whose results are not readable yet, oldest
  // first, the ticket and the position in `results` of its first result.
  std::deque<std::pair<uint64_t, size_t>> unreadable;
  // A finished job whose tasks, entries and results left memory; the journal
  // holds them (Scheduler::StoreFinished()) and gives them back when asked
  // (Load()). `stored_tasks` counts its tasks, all final and readable; the
  // counters and the rest stay.
  bool stored = false;
  uint32_t stored_tasks = 0;
  // Its summary is in the journal (AppendStored()): a restart restores it
  // from that.
  bool summarized = false;
  // `results` are in the journal's order (recovered or loaded from it), not
  // in the order this process recorded them.
  bool journal_order = false;

  // A job of `tasks`, all QUEUED since `created_us`.
  static std::unique_ptr<Job> Create(JobId id, int64_t created_us,
                                     std::vector<v1::Task> tasks);

  // Its tasks.
  size_t size() const { return stored ? stored_tasks : entries.size(); }
  bool done() const { return stored || results.size() == entries.size(); }
  // Results readers may see: those before the first unreadable ticket's.
  size_t readable() const {
    return unreadable.empty() ? results.size() : unreadable.front().second;
  }
  bool readable_done() const { return done() && unreadable.empty(); }
  // GetJob()'s view: the counters and the state.
  v1::JobInfo Info() const;
  // Info().state(), without building the rest.
  v1::JobState State() const;

  // A QUEUED task starts its next attempt on `worker` at `now_us`.
  void Start(uint32_t index, WorkerKey worker, int64_t now_us) {
    TaskEntry& entry = entries[index];
    entry.state = v1::TASK_STATE_RUNNING;
    ++entry.attempt;
    entry.dispatched_us = now_us;
    entry.worker = worker;
    --queued;
    ++running;
  }
  // A RUNNING task lost its worker: QUEUED again, `delayed` if it waits out
  // a backoff.
  void Requeue(uint32_t index, bool delayed) {
    TaskEntry& entry = entries[index];
    entry.state = v1::TASK_STATE_QUEUED;
    entry.worker = 0;
    entry.delayed = delayed;
    --running;
    ++queued;
  }
  // Records the final result of a QUEUED or RUNNING task.
  // `result->state()` must be final.
  void Finish(uint32_t index, std::unique_ptr<v1::TaskResult> result,
              int64_t now_us);
  // The results readable once journal tickets up to `ticket` are durable.
  void ReleaseUpTo(uint64_t ticket);

  // What the journal keeps of a finished job whose results it holds.
  v1::StoredJob Summary() const;
  // Makes a finished job with every result readable `stored`: its tasks,
  // entries and results move to the Job returned, for the caller to free
  // outside the scheduler's lock.
  std::unique_ptr<Job> Store();
  // What a stored job gets back from the journal: see LoadResults().
  struct Loaded {
    std::vector<TaskEntry> entries;
    std::deque<std::unique_ptr<v1::TaskResult>> results;
  };
  // A stored job holds `loaded` again, in journal order.
  void Load(Loaded loaded);
};

// A stored job's entries and results rebuilt from the results the journal
// gave back for it (in journal order), checked against its summary (GetJob()'s
// view): DATA_LOSS, naming the job, unless there is one final result per
// task and the counters agree.
absl::StatusOr<Job::Loaded> LoadResults(const v1::JobInfo& summary,
                                        std::vector<v1::TaskResult> results);

// About how much memory `result` takes in a Job: its strings and a fixed
// overhead. Cheaper than protobuf's SpaceUsedLong(); retention counts with it.
uint64_t ApproxBytes(const v1::TaskResult& result);

// One job as a journal recovered it after a restart; see
// Scheduler::Restore().
struct RecoveredJob {
  JobId id = 0;
  int64_t created_us = 0;
  // CancelJob() cancelled it.
  bool cancelled = false;
  // By index.
  std::vector<v1::Task> tasks = {};
  // Final results in the order they were journaled, at most one per index.
  std::vector<v1::TaskResult> results = {};
  // Attempts used by tasks without a result, by index (the latest journaled
  // for each): their next attempt continues from there.
  std::vector<std::pair<uint32_t, uint32_t>> attempts = {};
  // A finished job whose results stayed on disk: its summary, and no tasks,
  // results or attempts (see Job::stored).
  std::optional<v1::StoredJob> stored = std::nullopt;
};

// The Job a journal recovered: its results recorded, a cancelled job's
// other tasks CANCELLED at `now_us`, every other task QUEUED.
// INVALID_ARGUMENT, naming the job and the task, for an inconsistent one
// (see Scheduler::Restore()).
absl::StatusOr<std::unique_ptr<Job>> RestoreJob(RecoveredJob recovered,
                                                int64_t now_us);

// Jobs by id; ids are handed out from 1 up.
class JobTable {
 public:
  JobId NextId() { return next_id_++; }
  // The id NextId() hands out next: every lower one was handed out.
  JobId next_id() const { return next_id_; }
  // Ids handed out from now on are above `id`.
  void ContinueAfter(JobId id) { next_id_ = std::max(next_id_, id + 1); }

  void Add(std::unique_ptr<Job> job);
  // Null for an unknown id.
  Job* Find(JobId id) {
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : it->second.get();
  }
  const Job* Find(JobId id) const {
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : it->second.get();
  }
  // The job, which must exist.
  Job& Get(JobId id) { return *jobs_.at(id); }

  // Every job's id, lowest first.
  const std::vector<JobId>& ids() const { return ids_; }

  // Takes the jobs out of the table (unknown ids are skipped), in one pass
  // over ids(): the caller frees them, outside the scheduler's lock if they
  // are large.
  std::vector<std::unique_ptr<Job>> Erase(std::vector<JobId> ids);

  size_t size() const { return jobs_.size(); }
  bool empty() const { return jobs_.empty(); }

 private:
  JobId next_id_ = 1;
  // Jobs are kept until the scheduler releases them (Erase()).
  absl::flat_hash_map<JobId, std::unique_ptr<Job>> jobs_;
  // The keys of jobs_, sorted: ListJobs() pages through them.
  std::vector<JobId> ids_;
};

}  // namespace qfarm::coordinator
