// The workloads and methods of `qfarm bench`, and the ideal wall time of a
// workload for a number of slots.
//
//   absl::StatusOr<Workload> w = MakeWorkload({.name = "seed", .quick = true});
//   std::vector<v1::Task> tasks = BuildTasks(*w, "http://127.0.0.1:PORT");
//   double ideal = IdealSeconds(*w, /*slots=*/10, /*cores=*/2);
//
// Ideal wall times (a lower bound that counts no overhead):
//   seed, scale  ceil(tasks / slots) x sleep
//   http         ceil(tasks / slots) x the server's delay
//   cpu          ceil(tasks / min(slots, cores)) x one task's CPU time
//   mixed        max(ceil(io tasks / slots) x sleep,
//                    ceil(cpu tasks / min(slots, cores)) x one task's CPU)
//   echo, latency, queue, soak  none (0): they measure overhead itself
//   custom       none (0): a kind of the user's own
//
// Pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::bench {

enum class WorkloadKind {
  kSeed,
  kScale,
  kEcho,
  kCpu,
  kHttp,
  kMixed,
  kLatency,
  kQueue,
  // Jobs of echo tasks, one after another, through a journaled farm with a
  // short retention: the coordinator's RSS, journal and descriptors over
  // time (bench/soak.h).
  kSoak,
  // Tasks of one spec (--spec=KIND:ARG), typically a kind of the user's.
  kCustom
};

// What the command line asked for; zero values mean the workload's default.
struct WorkloadOptions {
  std::string name = "seed";
  int64_t tasks = 0;
  // sleep (seed, scale, mixed) or the server's delay (http).
  absl::Duration sleep = absl::ZeroDuration();
  int64_t cpu_units = 0;
  std::string payload;  // echo, latency
  // seed: 10 x 50 ms instead of 10 x 1 s.
  bool quick = false;
  // custom: the task, KIND:ARG (required).
  std::string spec = {};
  // soak: jobs of `tasks` each (0: 200), and the coordinator's
  // --retain-finished.
  int64_t jobs = 0;
  absl::Duration retain_finished = absl::Seconds(5);
};

struct Workload {
  WorkloadKind kind = WorkloadKind::kSeed;
  std::string name;
  int64_t tasks = 0;
  absl::Duration sleep = absl::ZeroDuration();
  int64_t cpu_units = 0;
  std::string payload;
  // mixed: tasks alternate sleep (even indexes) and cpu (odd ones).
  int64_t io_tasks = 0;
  int64_t cpu_tasks = 0;
  // CPU seconds of one cpu task on this machine (measured), for the ideal.
  double cpu_task_s = 0;
  // custom: every task.
  v1::Task custom;
  // soak: jobs of `tasks` echo tasks, and the coordinator's
  // --retain-finished.
  int64_t jobs = 0;
  absl::Duration retain_finished = absl::ZeroDuration();

  // "seed: 10 x sleep 1s".
  std::string Title() const;
  // The ideal's formula in words.
  std::string IdealFormula() const;
};

// INVALID_ARGUMENT naming the option for an unknown workload or a bad value
// (a spec for another workload than custom, or a custom one without; jobs
// for another workload than soak).
absl::StatusOr<Workload> MakeWorkload(const WorkloadOptions& options);

// The tasks, by index. `http_base` ("http://127.0.0.1:PORT") is where the
// http workload's delaying server listens.
std::vector<v1::Task> BuildTasks(const Workload& workload,
                                 absl::string_view http_base);

// The ideal wall time for `slots` tasks at once on `cores` cores; 0 when the
// workload has none.
double IdealSeconds(const Workload& workload, int64_t slots, int cores);

// Where a method runs its tasks.
enum class Placement { kLocal, kFarm, kPython };

struct Method {
  Placement placement = Placement::kLocal;
  // local and farm: serial, thread, async, auto. python: sequential,
  // process, thread, asyncio, uvloop.
  std::string mode;
  // farm: worker processes; 0 means the workload's default.
  int workers = 0;

  // "local:async", "farm:serial x10", "py:asyncio".
  std::string Label() const;
};

// A comma-separated list: local:MODE, farm:MODE[xN], py:NAME, or the groups
// "local", "farm", "py" (every method of the group), "all" (local and
// farm). INVALID_ARGUMENT naming the bad entry.
absl::StatusOr<std::vector<Method>> ParseMethods(absl::string_view list);

// The methods run when --methods is not given: every local and farm mode.
std::vector<Method> DefaultMethods();
// The seed's own methods (--python).
std::vector<Method> PythonMethods();

// Slots per executor (the local pool, or each farm worker) when --slots is
// not given: serial always 1; seed 10 (the seed's question); echo and cpu as
// many threads as cores; otherwise a thread per task up to 1,000 threads,
// and an event loop every task at once (echo: 10,000).
int64_t DefaultSlots(const Workload& workload, absl::string_view mode,
                     int cores);
// Worker processes of a farm method when neither the method nor --workers
// says: serial workers 10 (the seed's 10-slot pool; as many as the cores for
// echo and cpu, 1 for latency); other modes one per core for echo, else one.
int DefaultWorkers(const Workload& workload, absl::string_view mode, int cores);

}  // namespace qfarm::bench
