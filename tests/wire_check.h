// Exactly once, checked at the wire. Test clients that read the raw Farm
// streams (WatchJob, Session), with none of the client library's duplicate
// filtering, and a ledger that checks every result the moment it is read:
//
//   ResultLedger ledger;
//   std::mt19937_64 rng(seed);
//   std::vector<v1::Task> tasks = DistinctTasks("it7", {.sleeps = 100}, rng);
//   absl::StatusOr<uint64_t> job = client->SubmitJob(tasks);
//   ledger.AddJob(*job, tasks);
//   absl::Status s = WatchRaw(stub.get(), *job, &ledger, deadline);
//   EXPECT_EQ(ledger.problem_count(), 0) << ledger.Report();
//   EXPECT_TRUE(ledger.Complete(*job));
//
// What the ledger holds a farm to, for each job it was told of:
//   - on one stream (one WatchJob call, or one Session call) each
//     (job, index) arrives at most once, and a stream that says the job is
//     finished (WatchJob ending OK, Session's `finished`) carried every
//     index of it;
//   - a result is for a job this client submitted and an index inside it,
//     in a final state; with Expect::kOk the state is OK and the value is
//     the one that index's spec must produce (echo: its text; sleep: its
//     milliseconds; cpu: the digest), so a result filed under the wrong
//     index or job fails when the specs are distinct (DistinctTasks());
//   - a result read again on another stream (after a reconnect, or by a
//     second watcher) is the same result: same state, value, attempt,
//     worker, executor and finish time. A result, once read, never changes.
//
// Thread-safe: several readers may record into one ledger at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "qfarm/v1/farm.grpc.pb.h"

namespace qfarm::testing {

// The value a task's spec must produce when it runs OK; nullopt when it
// cannot be known in advance (http).
std::optional<std::string> ExpectedValue(const v1::Task& task);

// How many tasks of each kind; every value distinct inside the job.
struct JobShape {
  // echo:<label>/<index>.
  int echoes = 100;
  // sleep:<ms>, the milliseconds min_sleep_ms + k * sleep_step_ms for k in
  // 0..sleeps-1.
  int sleeps = 0;
  int min_sleep_ms = 20;
  int sleep_step_ms = 1;
  // cpu:<units>, units min_cpu_units, min_cpu_units+1, ... each once.
  int cpus = 0;
  int min_cpu_units = 2000;
};

// The tasks of `shape` in an order shuffled by `rng`: every value distinct,
// echo payloads naming `label` and the index.
std::vector<v1::Task> DistinctTasks(const std::string& label,
                                    const JobShape& shape,
                                    std::mt19937_64& rng);

class ResultLedger {
 public:
  enum class Expect {
    // Every task OK with its spec's value.
    kOk,
    // Any final state; a value checked only when the state is OK.
    kAnyFinal,
  };

  struct Stats {
    // Results read on every stream, resent ones included.
    uint64_t read = 0;
    // Distinct (job, index) with a result.
    uint64_t unique = 0;
    // Read again on a later stream (after a reconnect): allowed.
    uint64_t resent = 0;
    // Tasks of known jobs without a result (so far).
    uint64_t missing = 0;
    // The same (job, index) twice on one stream, or a result that changed.
    uint64_t duplicated = 0;
    // A wrong value, state, job or index.
    uint64_t wrong = 0;
    // Protocol problems (Session responses out of order, ...).
    uint64_t other = 0;
  };

  // The client submitted `job` with these tasks (by index).
  void AddJob(uint64_t job, std::vector<v1::Task> tasks,
              Expect expect = Expect::kOk);
  bool HasJob(uint64_t job) const;

  // A new stream (one call) starts; `label` names it in problems.
  int OpenStream(const std::string& label);
  // Checks one result read on `stream`.
  void Record(int stream, const v1::TaskResult& result);
  // `stream` said `job` is finished: each of its indices must have come on it.
  void JobFinishedOnStream(int stream, uint64_t job);
  // Something else the clients found wrong.
  void AddProblem(const std::string& problem);

  // Every task of `job` has a result.
  bool Complete(uint64_t job) const;
  // The results of `job` by index (empty messages where none came).
  std::vector<v1::TaskResult> Results(uint64_t job) const;
  Stats stats() const;
  uint64_t problem_count() const;
  // The first problems, one a line, and the stats.
  std::string Report() const;

 private:
  struct Expected {
    bool known = false;
    std::optional<std::string> value;
  };
  struct Job {
    std::vector<v1::Task> tasks;
    std::vector<Expected> expected;
    Expect expect = Expect::kOk;
    std::vector<std::unique_ptr<v1::TaskResult>> first;  // By index.
    uint64_t have = 0;
  };
  struct Stream {
    std::string label;
    absl::flat_hash_set<std::pair<uint64_t, uint32_t>> seen;
  };

  void ProblemLocked(uint64_t* counter, std::string problem)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<Stream> streams_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> problems_ ABSL_GUARDED_BY(mu_);
};

// Reads WatchJob streams for `job` into `ledger` until one ends OK (the job
// finished) or `give_up` passes. Each call is one stream for the ledger.
// When the coordinator is away (UNAVAILABLE) it calls again after a pause;
// it returns any other error, and DEADLINE_EXCEEDED at `give_up`.
absl::Status WatchRaw(v1::Farm::StubInterface* stub, uint64_t job,
                      ResultLedger* ledger, absl::Time give_up,
                      const std::string& token = "");

// One raw Session call, read by a thread of its own into a ledger. Each
// job sent is registered with the ledger when its id comes back. Checks
// besides the ledger's: a tag's job id never changes, results come only
// with an id, nothing comes for a tag after its last response.
class RawSession {
 public:
  RawSession(v1::Farm::StubInterface* stub, ResultLedger* ledger,
             const std::string& label, const std::string& token = "");
  // Cancels the call if it is still open and joins the reader.
  ~RawSession();
  RawSession(const RawSession&) = delete;
  RawSession& operator=(const RawSession&) = delete;

  // Sends a job; false when the call has ended.
  bool Send(uint64_t tag, const std::vector<v1::Task>& tasks,
            ResultLedger::Expect expect = ResultLedger::Expect::kOk);
  // The job's id once the coordinator accepted it; its refusal, or how the
  // call ended, when it was not; DEADLINE_EXCEEDED at `deadline`.
  absl::StatusOr<uint64_t> WaitAccepted(uint64_t tag, absl::Time deadline);
  // Half-closes the call (no more jobs).
  void WritesDone();
  // Waits for the call to end; returns its status (DEADLINE_EXCEEDED at
  // `deadline`, leaving the call open).
  absl::Status WaitEnded(absl::Time deadline);
  // Whether the tag got its `finished` response.
  bool Finished(uint64_t tag) const;
  // Every accepted tag's job id.
  std::vector<std::pair<uint64_t, uint64_t>> Accepted() const;

 private:
  struct Tag {
    std::vector<v1::Task> tasks;
    ResultLedger::Expect expect = ResultLedger::Expect::kOk;
    uint64_t job = 0;
    std::optional<absl::Status> refused;
    bool finished = false;
  };

  void ReadLoop();

  ResultLedger* const ledger_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriterInterface<v1::SessionRequest,
                                                    v1::SessionResponse>>
      stream_;
  int stream_id_ = 0;
  absl::Mutex write_mu_;  // One writer at a time.
  bool writes_done_ ABSL_GUARDED_BY(write_mu_) = false;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Tag> tags_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> ended_ ABSL_GUARDED_BY(mu_);
  std::thread reader_;
};

}  // namespace qfarm::testing
