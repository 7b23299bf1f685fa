// The chaos loop's iterations. Each starts a farm from the real binaries
// (a journaled coordinator, three workers of random modes), submits one job
// with SubmitJob and one on a Session, injects failures at points drawn from
// a seed, and checks every result at the wire (wire_check.h): nothing lost,
// nothing duplicated, every value right; then the farm must stop cleanly.
//
//   ChaosPlan plan = MakeChaosPlan(seed);      // the same seed, the same plan
//   IterationOutcome out = RunChaosIteration(plan, {});
//   if (!out.ok) std::cerr << out.failure;     // names the seed to replay
//
// The failures, one scenario per seed (seed % kChaosScenarios), with random
// victims, times and worker modes:
//   worker-kills      SIGKILL of workers (any mode) while they run tasks
//   after-submit      SIGKILL of the coordinator right after SubmitJob was
//                     answered OK
//   after-session     SIGKILL of the coordinator right after a Session
//                     accepted a job
//   coordinator-twice two coordinator kills in one job
//   with-worker       the coordinator and a worker killed together
//   freeze-worker     SIGSTOP/SIGCONT of workers, some past the heartbeat
//                     timeout (declared dead, their late results dropped)
//   freeze-coordinator SIGSTOP/SIGCONT of the coordinator
//   mixed             several of the above
// A killed worker is replaced by a new one of a random mode; a killed
// coordinator is restarted on the same port and data dir.
//
// Timing: the plan's times are pacing (when to strike), never used to wait
// for a condition; waits are on conditions with deadlines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/local_farm.h"
#include "tests/wire_check.h"

namespace qfarm::testing {

inline constexpr int kChaosScenarios = 8;

enum class ChaosAction {
  kKillWorker,
  kKillCoordinator,
  kKillCoordinatorAndWorker,
  kFreezeWorker,
  kFreezeCoordinator,
};

struct ChaosEvent {
  // After the jobs were accepted.
  absl::Duration at;
  ChaosAction action = ChaosAction::kKillWorker;
  // Picks the victim among the workers alive then (modulo their number).
  uint32_t victim = 0;
  // The replacement of a killed worker.
  WorkerSpec replacement;
  // How long a freeze lasts.
  absl::Duration freeze;
};

struct ChaosPlan {
  uint64_t seed = 0;
  std::string scenario;
  std::vector<WorkerSpec> workers;
  // --journal-sync of the coordinator.
  std::string journal_sync;
  JobShape submit_job;
  JobShape session_job;
  bool kill_after_submit_ack = false;
  bool kill_after_session_ack = false;
  std::vector<ChaosEvent> events;  // By time.
};

ChaosPlan MakeChaosPlan(uint64_t seed);
// One line: scenario, workers, journal, jobs and events.
std::string DescribePlan(const ChaosPlan& plan);

struct ChaosCounts {
  // Workers killed, by mode: serial, thread, async, auto.
  int worker_kills[4] = {};
  int coordinator_kills = 0;
  int kills_after_submit_ack = 0;
  int kills_after_session_ack = 0;
  int kills_with_worker = 0;
  int worker_freezes = 0;
  int coordinator_freezes = 0;
  // Events not run because the jobs had already finished.
  int skipped = 0;
  uint64_t tasks = 0;
  uint64_t results_read = 0;
  uint64_t lost = 0;
  uint64_t duplicated = 0;
  uint64_t wrong = 0;

  void Add(const ChaosCounts& other);
  int worker_kills_total() const;
};

struct IterationOutcome {
  bool ok = false;
  ChaosCounts counts;
  absl::Duration elapsed;
  // What happened, one event a line with its time.
  std::string timeline;
  // Why it failed (the ledger's problems, statuses, logs' location).
  std::string failure;
};

struct ChaosOptions {
  // How long the jobs may take to finish after the last event.
  absl::Duration deadline = absl::Seconds(120);
  // A failed iteration's logs and journal are copied under this directory.
  std::string keep_logs_under = "/tmp";
};

IterationOutcome RunChaosIteration(const ChaosPlan& plan,
                                   const ChaosOptions& options);

}  // namespace qfarm::testing
