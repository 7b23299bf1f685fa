// What the scheduler and the services need of a journal, as interfaces:
// Journal (coordinator/journal.h) implements them on SQLite; tests use fakes
// that hold the callbacks.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "coordinator/ids.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::coordinator {

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
};

// Makes accepted jobs durable before the service acknowledges them, and
// tells when earlier appends are (see FarmService::SetJournal()).
class JobJournal : public ResultJournal {
 public:
  // Appends an accepted job; `done` as for AppendResults(). Must not block
  // and must not call into the scheduler (it runs under the scheduler's
  // lock, see Scheduler::AcceptedHook).
  // `kinds` is the job's kind table (see Scheduler::SubmitJob()).
  virtual uint64_t AppendJob(JobId job, int64_t created_us,
                             const std::vector<v1::Task>& tasks,
                             const std::vector<std::string>& kinds,
                             Done done) = 0;
  // Calls `done` once every append made before this call is durable (or
  // with the error that keeps it from being so). Returns its sequence
  // number.
  virtual uint64_t WhenDurable(Done done) = 0;
};

}  // namespace qfarm::coordinator
