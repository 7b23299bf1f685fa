// The coordinator's scheduler, per task: SubmitJob + AddCredits +
// TakeDispatches + RecordResults, for jobs of 1 and of 1,000 echo tasks,
// with one worker taking everything. BM_SchedulerPerTaskRecycled also hands
// the sent assignments back (RecycleAssignments), as the coordinator's
// worker streams do after each write.
//
//   build/bin/scheduler_bench --benchmark_counters_tabular=true
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "coordinator/scheduler.h"

namespace qfarm::coordinator {
namespace {

// The scheduler keeps every job; a fresh one every this many tasks keeps the
// benchmark's memory flat.
constexpr int64_t kTasksPerScheduler = 200'000;

void RunPerTask(benchmark::State& state, bool recycle) {
  const int batch = static_cast<int>(state.range(0));
  // As clients send them: the kind by index in the job's table.
  const std::vector<std::string> kinds = {"echo"};
  v1::Task echo;
  echo.set_kind_index(0);
  echo.set_text("x");
  const std::vector<v1::Task> tasks(static_cast<size_t>(batch), echo);
  FakeClock clock;
  std::unique_ptr<Scheduler> scheduler;
  WorkerKey worker = 0;
  int64_t used = kTasksPerScheduler;
  for (auto _ : state) {
    if (used + batch > kTasksPerScheduler) {
      state.PauseTiming();
      scheduler = std::make_unique<Scheduler>(
          &clock,
          SchedulerOptions{.max_queued = 1'000'000,
                           .max_batch = 1000,
                           .heartbeat_timeout = absl::InfiniteDuration()});
      worker = scheduler->AddWorker({.worker_id = "w1",
                                     .mode = "async",
                                     .slots = static_cast<uint32_t>(batch),
                                     .kinds = {"echo"}});
      used = 0;
      state.ResumeTiming();
    }
    used += batch;
    absl::StatusOr<JobId> job = scheduler->SubmitJob(tasks, kinds);
    if (!job.ok()) {
      state.SkipWithError("SubmitJob failed");
      break;
    }
    scheduler->AddCredits(worker, static_cast<uint32_t>(batch));
    std::vector<v1::TaskResult> results;
    results.reserve(static_cast<size_t>(batch));
    for (Dispatch& dispatch : scheduler->TakeDispatches()) {
      for (const v1::Assignment& a : dispatch.assignments) {
        v1::TaskResult& r = results.emplace_back();
        r.set_job_id(a.job_id());
        r.set_index(a.index());
        r.set_attempt(a.attempt());
        r.set_state(v1::TASK_STATE_OK);
        r.set_value(a.task().text());
      }
      if (recycle) scheduler->RecycleAssignments(&dispatch.assignments);
    }
    benchmark::DoNotOptimize(
        scheduler->RecordResults(worker, std::move(results)));
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void BM_SchedulerPerTask(benchmark::State& state) { RunPerTask(state, false); }
BENCHMARK(BM_SchedulerPerTask)
    ->Arg(1)
    ->Arg(1000)
    ->Unit(benchmark::kMicrosecond);

void BM_SchedulerPerTaskRecycled(benchmark::State& state) {
  RunPerTask(state, true);
}
BENCHMARK(BM_SchedulerPerTaskRecycled)
    ->Arg(1000)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace qfarm::coordinator
