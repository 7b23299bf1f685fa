// Executors, submit to result per echo task: 10,000 tasks handed over one
// Submit() at a time or in SubmitBatch() chunks of 1,000 (refilling spent
// assignments, as the local pool does), on the thread pool
// (2 threads) and the async loop, timed until every result is back.
//
//   build/bin/executor_bench --benchmark_counters_tabular=true
#include <atomic>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "executors/executor.h"

namespace qfarm::executors {
namespace {

constexpr int kTasks = 10'000;
constexpr int kChunk = 1'000;

class CountingSink : public ResultSink {
 public:
  void OnResult(v1::TaskResult result) override {
    benchmark::DoNotOptimize(result);
    Add(1);
  }
  void OnResults(std::vector<v1::TaskResult>& results) override {
    Add(static_cast<int64_t>(results.size()));
  }
  void WaitFor(int64_t n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return count_ >= n;
    };
    mu_.Await(absl::Condition(&reached));
  }

 private:
  void Add(int64_t n) {
    absl::MutexLock lock(&mu_);
    count_ += n;
  }
  absl::Mutex mu_;
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
};

// range(0): 0 thread, 1 async. range(1): 1 batches, 0 one at a time.
void BM_ExecutorEcho(benchmark::State& state) {
  const Mode mode = state.range(0) == 0 ? Mode::kThread : Mode::kAsync;
  const bool batches = state.range(1) == 1;
  CountingSink sink;
  std::unique_ptr<Executor> executor =
      MakeExecutor({.mode = mode,
                    .slots = mode == Mode::kThread ? 2 : 10'000,
                    .worker_name = "bench",
                    .sink = &sink});
  v1::Assignment echo;
  echo.set_attempt(1);
  echo.mutable_task()->set_kind("echo");
  echo.mutable_task()->set_text("x");
  int64_t done = 0;
  for (auto _ : state) {
    for (int i = 0; i < kTasks;) {
      if (batches) {
        // Spent assignments are filled again, as the local pool does.
        std::vector<v1::Assignment> chunk;
        executor->TakeSpentAssignments(chunk);
        chunk.resize(kChunk);
        for (int k = 0; k < kChunk; ++k) {
          chunk[k].set_index(static_cast<uint32_t>(i + k));
          chunk[k].set_attempt(1);
          chunk[k].mutable_task()->CopyFrom(echo.task());
        }
        executor->SubmitBatch(std::move(chunk));
        i += kChunk;
      } else {
        v1::Assignment a = echo;
        a.set_index(static_cast<uint32_t>(i++));
        executor->Submit(std::move(a));
      }
    }
    done += kTasks;
    sink.WaitFor(done);
  }
  executor->Shutdown();
  state.SetItemsProcessed(state.iterations() * kTasks);
  state.SetLabel(
      absl::StrCat(ModeName(mode), batches ? " SubmitBatch" : " Submit"));
}
BENCHMARK(BM_ExecutorEcho)
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace qfarm::executors
