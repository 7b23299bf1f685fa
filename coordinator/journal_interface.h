// What the scheduler and the services need of a journal, as interfaces:
// Journal (coordinator/journal.h) implements them on SQLite; tests use fakes
// that hold the callbacks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/ids.h"
#include "qfarm/v1/farm.pb.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::coordinator {

// A finished job released under the retention settings (see
// Scheduler::ReleaseFinished()).
struct ReleasedJob {
  JobId id = 0;
  // When its last task finished.
  int64_t finished_us = 0;
  // The setting it was released under, as the flag: "--retain-finished=1h".
  std::string setting;
};

// Makes final results durable before the scheduler lets anyone read them
// (see Scheduler::SetJournal()).
class ResultJournal {
 public:
  // Called once, from any thread, with OK once the append is durable, or with
  // the error that keeps it from ever being so.
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  virtual ~ResultJournal() = default;

  // Appends final results (each task's at most once, ever). Must not block.
  // Should not call `done` before returning except to fail at once (a
  // closed journal); the scheduler holds no lock when it appends. Returns
  // the append's sequence number, increasing.
  virtual uint64_t AppendResults(std::vector<v1::TaskResult> results,
                                 Done done) = 0;
  // Appends, atomically, that CancelJob() cancelled `job` and the results of
  // the tasks it cancelled. Same contract as AppendResults().
  virtual uint64_t AppendCancel(JobId job, std::vector<v1::TaskResult> results,
                                Done done) = 0;
  // Appends the attempts used by tasks whose worker was lost and that were
  // queued again (each result carries job_id, index and attempt only), so a
  // restart does not give them a fresh set. Same contract as
  // AppendResults(); nothing waits for it.
  virtual uint64_t AppendAttempts(std::vector<v1::TaskResult> attempts,
                                  Done done) = 0;
  // Appends that these finished jobs were released under the retention
  // settings: they are never recovered again. Same contract.
  virtual uint64_t AppendRelease(std::vector<ReleasedJob> jobs, Done done) = 0;

  // Whether finished jobs' results may leave memory and be read back with
  // LoadResults() when asked for (Scheduler::StoreFinished()). Not by
  // default.
  virtual bool StoresResults() const { return false; }
  // Appends the summaries of finished jobs whose results are read back from
  // the journal from now on (each job at most once). Same contract as
  // AppendResults(). By default: fails at once with UNIMPLEMENTED.
  virtual uint64_t AppendStored(std::vector<v1::StoredJob> /*jobs*/,
                                Done done) {
    if (done) std::move(done)(absl::UnimplementedError("AppendStored"));
    return 0;
  }
  // The final results of `job` made durable so far (its AppendResults() and
  // AppendCancel() results), in the order the journal holds them. Blocks
  // on the journal's I/O: call without locks. By default UNIMPLEMENTED.
  virtual absl::StatusOr<std::vector<v1::TaskResult>> LoadResults(
      JobId /*job*/) {
    return absl::UnimplementedError("LoadResults");
  }
};

// Makes accepted jobs durable before the service acknowledges them, and
// tells when earlier appends are (see FarmService::SetJournal()).
class JobJournal : public ResultJournal {
 public:
  // Encodes a job's tasks for AppendJob(): the costly part, done by the
  // caller before it takes the scheduler's lock. `kinds` is the job's kind
  // table (see Scheduler::SubmitJob()).
  virtual std::string EncodeJob(const std::vector<v1::Task>& tasks,
                                const std::vector<std::string>& kinds) = 0;
  // Appends an accepted job, its tasks as EncodeJob() gave them; `done` as
  // for AppendResults(). Must not block and must not call into the
  // scheduler (it runs under the scheduler's lock, see
  // Scheduler::AcceptedHook).
  virtual uint64_t AppendJob(JobId job, int64_t created_us,
                             std::string encoded_tasks, Done done) = 0;
  // Calls `done` once every append made before this call is durable (or
  // with the error that keeps it from being so). Returns its sequence
  // number.
  virtual uint64_t WhenDurable(Done done) = 0;
};

}  // namespace qfarm::coordinator
