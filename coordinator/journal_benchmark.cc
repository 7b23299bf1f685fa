// How fast the journal makes results durable: batches of echo-sized results
// appended (from one or more threads, as worker streams deliver them), then
// flushed. items_per_second is results made durable per second, with an
// fsync per group commit (JournalSync::kFull) unless the name says normal.
//
//   ninja -C build journal_benchmark && build/bin/journal_benchmark
//
// The journal lives in a fresh directory under $TMPDIR (or /tmp).
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "coordinator/journal.h"

namespace qfarm::coordinator {
namespace {

constexpr uint32_t kResultsPerIteration = 100'000;

v1::TaskResult EchoResult(uint32_t index) {
  v1::TaskResult result;
  result.set_job_id(1);
  result.set_index(index);
  result.set_attempt(1);
  result.set_state(v1::TASK_STATE_OK);
  result.set_value(absl::StrCat("t", index));
  result.set_worker("worker-1");
  result.set_executor("thread-0");
  result.set_queued_us(1'700'000'000'000'000);
  result.set_dispatched_us(1'700'000'000'000'100);
  result.set_started_us(1'700'000'000'000'200);
  result.set_finished_us(1'700'000'000'000'300);
  return result;
}

// Args: results per append, appending threads, 1 for synchronous=FULL.
void BM_DurableResults(benchmark::State& state) {
  const auto batch = static_cast<uint32_t>(state.range(0));
  const auto threads = static_cast<uint32_t>(state.range(1));
  const bool full = state.range(2) != 0;
  const char* tmp = getenv("TMPDIR");
  std::string dir =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/journal_benchmark.XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  {
    auto journal = Journal::Open(
        dir, {.sync = full ? JournalSync::kFull : JournalSync::kNormal});
    if (!journal.ok()) {
      state.SkipWithError(journal.status().ToString().c_str());
      return;
    }
    std::vector<v1::TaskResult> templ;
    for (uint32_t i = 0; i < batch; ++i) templ.push_back(EchoResult(i));
    uint64_t before = (*journal)->stats().transactions;
    for (auto _ : state) {
      std::vector<std::thread> appenders;
      for (uint32_t t = 0; t < threads; ++t) {
        appenders.emplace_back([&] {
          for (uint32_t n = 0; n < kResultsPerIteration / threads; n += batch) {
            (*journal)->AppendResults(templ);  // A copy, as the scheduler's.
          }
        });
      }
      for (std::thread& appender : appenders) appender.join();
      if (!(*journal)->Flush().ok()) state.SkipWithError("flush failed");
    }
    const JournalStats stats = (*journal)->stats();
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                            kResultsPerIteration);
    state.counters["commits/iter"] =
        benchmark::Counter(static_cast<double>(stats.transactions - before) /
                           static_cast<double>(state.iterations()));
    state.counters["MiB"] =
        benchmark::Counter(static_cast<double>(stats.bytes) / (1 << 20));
  }
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_DurableResults)
    ->ArgNames({"batch", "threads", "full"})
    ->Args({1000, 1, 1})
    ->Args({1000, 2, 1})
    ->Args({100, 2, 1})
    ->Args({10, 2, 1})
    ->Args({1, 2, 1})
    ->Args({1000, 2, 0})
    ->Args({1, 2, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One result appended and waited for, again and again: the latency a lone
// result pays for durability (one transaction, one fsync with full:1).
void BM_LoneResultLatency(benchmark::State& state) {
  const bool full = state.range(0) != 0;
  const char* tmp = getenv("TMPDIR");
  std::string dir =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/journal_benchmark.XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  {
    auto journal = Journal::Open(
        dir, {.sync = full ? JournalSync::kFull : JournalSync::kNormal});
    if (!journal.ok()) {
      state.SkipWithError(journal.status().ToString().c_str());
      return;
    }
    const std::vector<v1::TaskResult> one = {EchoResult(0)};
    for (auto _ : state) {
      if (!(*journal)->WaitDurable((*journal)->AppendResults(one)).ok()) {
        state.SkipWithError("append failed");
      }
    }
  }
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_LoneResultLatency)
    ->ArgNames({"full"})
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Encoding a job of N echo tasks for the journal (Journal::EncodeJob()): the
// time the scheduler's lock was held for it before the encoding moved out
// of the lock (issue 13). items_per_second is tasks encoded per second.
void BM_EncodeJob(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  std::vector<v1::Task> tasks(n);
  for (size_t i = 0; i < n; ++i) {
    tasks[i].set_kind_index(0);
    tasks[i].set_text(absl::StrCat("x", i));
  }
  const std::vector<std::string> kinds = {"echo"};
  const std::string dir =
      absl::StrCat(getenv("TMPDIR") != nullptr ? getenv("TMPDIR") : "/tmp",
                   "/journal_benchmark_encode_", getpid());
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(dir);
  if (!journal.ok()) {
    state.SkipWithError("open failed");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize((*journal)->EncodeJob(tasks, kinds));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
  journal->reset();
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_EncodeJob)
    ->ArgNames({"tasks"})
    ->Arg(1000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qfarm::coordinator

BENCHMARK_MAIN();
