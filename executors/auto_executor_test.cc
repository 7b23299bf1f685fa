// The auto mode: IO kinds on the loop, cpu on the pool, one bound on both.
// The contract it shares with every executor is in executor_test.cc.
#include "executors/auto_executor.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "executors/executor_test_util.h"
#include "executors/task_kinds.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/http_test_server.h"

namespace qfarm::executors {
namespace {

using ::qfarm::testing::HttpTestServer;
using ::testing::StartsWith;

// Enough iterations to run for minutes: such a task ends only by cancel.
constexpr int64_t kEndlessCpu = 1'000'000'000;

class AutoExecutorTest : public ::testing::Test {
 protected:
  std::unique_ptr<AutoExecutor> Make(int slots) {
    return std::make_unique<AutoExecutor>(
        ExecutorOptions{.mode = Mode::kAuto,
                        .slots = slots,
                        .worker_name = "worker-1",
                        .clock = &clock_,
                        .sink = &recorder_},
        recorder_.StartHook());
  }

  std::set<std::string> CpuLabels(const AutoExecutor& executor) const {
    std::set<std::string> labels;
    for (int i = 0; i < executor.cpu_threads(); ++i) {
      labels.insert(absl::StrCat("cpu-", i));
    }
    return labels;
  }

  SteadyClock clock_;
  Recorder recorder_;
};

TEST_F(AutoExecutorTest, PoolIsSizedToTheCoresWithinSlots) {
  const int cores =
      std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_EQ(Make(1000)->cpu_threads(), cores);
  EXPECT_EQ(Make(1)->cpu_threads(), 1);
}

TEST_F(AutoExecutorTest, MixedBatchRunsCpuOnThePoolAndIoOnTheLoop) {
  auto server = HttpTestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto executor = Make(1000);
  constexpr uint32_t kEach = 20;
  uint32_t index = 0;
  std::map<uint32_t, std::string> kinds;
  for (uint32_t i = 0; i < kEach; ++i) {
    for (v1::Assignment a :
         {Cpu(1, index, 2000), Sleep(1, index + 1, 5), Echo(1, index + 2, "e"),
          Http(1, index + 3, (*server)->Url("/delay/5"))}) {
      kinds[a.index()] = a.task().kind();
      executor->Submit(std::move(a));
    }
    index += 4;
  }
  executor->Shutdown();

  const std::set<std::string> cpu_labels = CpuLabels(*executor);
  std::map<std::string, std::set<std::thread::id>> threads;
  for (const auto& [label, ids] : recorder_.threads_by_label()) {
    threads[label].insert(ids.begin(), ids.end());
  }
  std::vector<v1::TaskResult> results = recorder_.results();
  ASSERT_EQ(results.size(), 4 * kEach);
  for (const v1::TaskResult& result : results) {
    EXPECT_EQ(result.state(), v1::TASK_STATE_OK) << result.error();
    EXPECT_EQ(result.worker(), "worker-1");
    if (kinds[result.index()] == "cpu") {
      EXPECT_TRUE(cpu_labels.contains(result.executor())) << result.executor();
      EXPECT_EQ(result.value(), CpuDigestHex(2000));
    } else {
      EXPECT_EQ(result.executor(), "async") << "kind " << kinds[result.index()];
    }
  }
  // One loop thread; each cpu label is one thread, none of them the loop.
  ASSERT_EQ(threads["async"].size(), 1u);
  for (const std::string& label : cpu_labels) {
    if (!threads.contains(label)) continue;  // That thread ran nothing.
    EXPECT_EQ(threads[label].size(), 1u) << label;
    EXPECT_FALSE(threads[label].contains(*threads["async"].begin())) << label;
  }
}

// Every pool thread busy with endless cpu work: sleeps, echoes and GETs
// still run on the loop, and the cpu tasks are still running when they end.
TEST_F(AutoExecutorTest, CpuWorkDoesNotHoldUpTheLoop) {
  auto server = HttpTestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto executor = Make(1000);
  const uint32_t cpus = executor->cpu_threads();
  for (uint32_t i = 0; i < cpus; ++i) executor->Submit(Cpu(1, i, kEndlessCpu));
  ASSERT_TRUE(recorder_.WaitForStarts(cpus));
  constexpr uint32_t kIo = 30;
  for (uint32_t i = 0; i < kIo; i += 3) {
    executor->Submit(Sleep(2, i, 1));
    executor->Submit(Echo(2, i + 1, "e"));
    executor->Submit(Http(2, i + 2, (*server)->Url("/delay/1")));
  }
  ASSERT_TRUE(recorder_.WaitForResults(kIo));
  // Only job 2's tasks have finished.
  for (const v1::TaskResult& result : recorder_.results()) {
    EXPECT_EQ(result.job_id(), 2u);
    EXPECT_EQ(result.state(), v1::TASK_STATE_OK) << result.error();
    EXPECT_EQ(result.executor(), "async");
  }
  executor->CancelJob(1);
  ASSERT_TRUE(recorder_.WaitForResults(kIo + cpus));
  for (uint32_t i = 0; i < cpus; ++i) {
    v1::TaskResult result = recorder_.results_by_key()[Key(1, i)];
    EXPECT_EQ(result.state(), v1::TASK_STATE_CANCELLED);
    EXPECT_GT(result.started_us(), 0);
    EXPECT_THAT(result.executor(), StartsWith("cpu-"));
  }
}

// Thousands of endless sleeps on the loop: cpu tasks still get the pool.
TEST_F(AutoExecutorTest, SleepsDoNotOccupyThePool) {
  auto executor = Make(5000);
  constexpr uint32_t kSleeps = 2000;
  for (uint32_t i = 0; i < kSleeps; ++i) {
    executor->Submit(Sleep(1, i, kHourMs));
  }
  for (uint32_t i = 0; i < 10; ++i) executor->Submit(Cpu(2, i, 100));
  ASSERT_TRUE(recorder_.WaitForResults(10));
  for (const v1::TaskResult& result : recorder_.results()) {
    EXPECT_EQ(result.job_id(), 2u);
    EXPECT_EQ(result.state(), v1::TASK_STATE_OK);
    EXPECT_THAT(result.executor(), StartsWith("cpu-"));
  }
  executor->CancelJob(1);
  executor->Shutdown();
  EXPECT_EQ(recorder_.num_results(), kSleeps + 10);
}

// With every slot held by endless sleeps, a cpu task waits in the auto
// executor and starts only after a slot frees.
TEST_F(AutoExecutorTest, SlotsBoundTasksInFlightAcrossLoopAndPool) {
  constexpr uint32_t kSlots = 3;
  auto executor = Make(kSlots);
  for (uint32_t i = 0; i < kSlots; ++i) {
    executor->Submit(Sleep(1, i, kHourMs));
  }
  executor->Submit(Cpu(2, 0, 100));
  for (uint32_t i = 1; i < 20; ++i) {
    executor->Submit(i % 2 == 0 ? Cpu(2, i, 100) : Sleep(2, i, 1));
  }
  ASSERT_TRUE(recorder_.WaitForStarts(kSlots));
  executor->CancelJob(1);
  ASSERT_TRUE(recorder_.WaitForResults(kSlots + 20));
  executor->Shutdown();

  std::map<Key, v1::TaskResult> by_key = recorder_.results_by_key();
  int64_t first_sleep_end = INT64_MAX;
  for (uint32_t i = 0; i < kSlots; ++i) {
    EXPECT_EQ(by_key[Key(1, i)].state(), v1::TASK_STATE_CANCELLED);
    first_sleep_end =
        std::min(first_sleep_end, by_key[Key(1, i)].finished_us());
  }
  for (uint32_t i = 0; i < 20; ++i) {
    EXPECT_EQ(by_key[Key(2, i)].state(), v1::TASK_STATE_OK) << i;
  }
  EXPECT_GE(by_key[Key(2, 0)].started_us(), first_sleep_end);
  EXPECT_LE(recorder_.max_running(), static_cast<int>(kSlots));
  EXPECT_LE(MaxOverlap(recorder_.results()), static_cast<int>(kSlots));
}

// Tasks waiting in the auto executor (beyond the slots) are reported as
// never started, labelled "auto"; other jobs' tasks run.
TEST_F(AutoExecutorTest, CancelDropsTasksWaitingForASlot) {
  auto executor = Make(2);
  for (uint32_t i = 0; i < 6; ++i) executor->Submit(Sleep(1, i, kHourMs));
  executor->Submit(Cpu(2, 0, 1));
  ASSERT_TRUE(recorder_.WaitForStarts(2));
  executor->CancelJob(1);
  ASSERT_TRUE(recorder_.WaitForResults(7));
  executor->Shutdown();

  std::map<Key, v1::TaskResult> by_key = recorder_.results_by_key();
  for (uint32_t i = 0; i < 6; ++i) {
    const v1::TaskResult& result = by_key[Key(1, i)];
    EXPECT_EQ(result.state(), v1::TASK_STATE_CANCELLED) << i;
    if (i < 2) {
      EXPECT_EQ(result.executor(), "async") << i;
      EXPECT_GT(result.started_us(), 0) << i;
    } else {
      EXPECT_EQ(result.executor(), AutoExecutor::kLabel) << i;
      EXPECT_EQ(result.started_us(), 0) << i;
      EXPECT_FALSE(recorder_.started(Key(1, i))) << i;
    }
  }
  EXPECT_EQ(by_key[Key(2, 0)].state(), v1::TASK_STATE_OK);
}

TEST_F(AutoExecutorTest, SubmitAfterShutdownIsLabelledAuto) {
  auto executor = Make(4);
  executor->Shutdown();
  executor->Submit(Cpu(1, 0, 1));
  ASSERT_EQ(recorder_.num_results(), 1u);
  EXPECT_EQ(recorder_.results()[0].state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(recorder_.results()[0].error(), "executor is shut down");
  EXPECT_EQ(recorder_.results()[0].executor(), "auto");
}

}  // namespace
}  // namespace qfarm::executors
