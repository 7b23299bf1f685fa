#include "executors/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "executors/async_executor.h"
#include "executors/auto_executor.h"
#include "executors/executor_test_util.h"
#include "executors/task_kinds.h"
#include "executors/thread_executor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::executors {
namespace {

using ::testing::AnyOf;
using ::testing::StartsWith;

constexpr char kCpu1[] =
    "7438316555053085e8332db3a573a17774178d881f8ae904b165c0f7b791736f";

std::unique_ptr<Executor> MakeHooked(Mode mode, int slots, Recorder& recorder,
                                     Clock* clock) {
  return MakeWithStartHook({.mode = mode,
                            .slots = slots,
                            .worker_name = "w1",
                            .clock = clock,
                            .sink = &recorder},
                           recorder.StartHook());
}

TEST(ModeTest, ParseAndName) {
  for (Mode mode : {Mode::kSerial, Mode::kThread, Mode::kAsync, Mode::kAuto}) {
    absl::StatusOr<Mode> parsed = ParseMode(ModeName(mode));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, mode);
  }
  EXPECT_EQ(ModeName(Mode::kThread), "thread");
  EXPECT_EQ(ModeName(Mode::kAuto), "auto");
  absl::StatusOr<Mode> bad = ParseMode("threads");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), StartsWith("executor mode"));
}

TEST(MakeExecutorTest, BuildsEachMode) {
  Recorder recorder;
  auto serial =
      MakeExecutor({.mode = Mode::kSerial, .slots = 8, .sink = &recorder});
  EXPECT_EQ(serial->mode(), Mode::kSerial);
  EXPECT_EQ(serial->slots(), 1);
  auto thread =
      MakeExecutor({.mode = Mode::kThread, .slots = 3, .sink = &recorder});
  EXPECT_EQ(thread->mode(), Mode::kThread);
  EXPECT_EQ(thread->slots(), 3);
  auto async =
      MakeExecutor({.mode = Mode::kAsync, .slots = 100, .sink = &recorder});
  EXPECT_EQ(async->mode(), Mode::kAsync);
  EXPECT_EQ(async->slots(), 100);
  auto automatic =
      MakeExecutor({.mode = Mode::kAuto, .slots = 50, .sink = &recorder});
  EXPECT_EQ(automatic->mode(), Mode::kAuto);
  EXPECT_EQ(automatic->slots(), 50);
  automatic->Shutdown();
  async->Submit(Echo(1, 0, "x"));
  async->Shutdown();
  ASSERT_EQ(recorder.num_results(), 1u);
  EXPECT_EQ(recorder.results()[0].worker(), "local");  // The default.
  EXPECT_EQ(recorder.results()[0].value(), "x");
}

struct ModeCase {
  Mode mode;
  int slots;
};

std::string CaseName(const testing::TestParamInfo<ModeCase>& info) {
  return absl::StrCat(ModeName(info.param.mode), info.param.slots);
}

class ExecutorTest : public testing::TestWithParam<ModeCase> {
 protected:
  ExecutorTest()
      : executor_(MakeHooked(GetParam().mode, GetParam().slots, recorder_,
                             &clock_)) {}

  Mode mode() const { return GetParam().mode; }
  int slots() const { return GetParam().slots; }

  SteadyClock clock_;
  Recorder recorder_;
  std::unique_ptr<Executor> executor_;
};

INSTANTIATE_TEST_SUITE_P(
    Modes, ExecutorTest,
    testing::Values(ModeCase{Mode::kSerial, 1}, ModeCase{Mode::kThread, 1},
                    ModeCase{Mode::kThread, 4}, ModeCase{Mode::kAsync, 1},
                    ModeCase{Mode::kAsync, 3}, ModeCase{Mode::kAuto, 1},
                    ModeCase{Mode::kAuto, 3}),
    CaseName);

TEST_P(ExecutorTest, RunsEveryKind) {
  executor_->Submit(Sleep(1, 0, 5));
  executor_->Submit(Echo(1, 1, "hello"));
  executor_->Submit(Cpu(1, 2, 1));
  // Refused before any network traffic; http_task_test.cc has real GETs.
  v1::Assignment http = Assign(1, 3, "http", 0);
  http.mutable_task()->set_text("ftp://example.com/");
  executor_->Submit(http);
  executor_->Submit(Assign(1, 4, "no kind", 0));
  executor_->Submit(Assign(1, 5, "resize", 0));
  ASSERT_TRUE(recorder_.WaitForResults(6));

  std::map<Key, v1::TaskResult> by_key = recorder_.results_by_key();
  ASSERT_EQ(by_key.size(), 6u);
  EXPECT_EQ(by_key[Key(1, 0)].value(), "5");
  EXPECT_EQ(by_key[Key(1, 1)].value(), "hello");
  EXPECT_EQ(by_key[Key(1, 2)].value(), kCpu1);
  for (uint32_t i : {0, 1, 2}) {
    EXPECT_EQ(by_key[Key(1, i)].state(), v1::TASK_STATE_OK) << i;
    EXPECT_EQ(by_key[Key(1, i)].error(), "") << i;
  }
  EXPECT_EQ(by_key[Key(1, 3)].state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(by_key[Key(1, 3)].error(),
            "invalid task: http url \"ftp://example.com/\" must be an http:// "
            "or https:// URL with a host");
  EXPECT_EQ(by_key[Key(1, 4)].state(), v1::TASK_STATE_FAILED);
  EXPECT_THAT(by_key[Key(1, 4)].error(),
              testing::HasSubstr("invalid task: kind name \"no kind\""));
  EXPECT_EQ(by_key[Key(1, 5)].state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(by_key[Key(1, 5)].error(),
            "kind \"resize\" is not offered here (offered: cpu, echo, http, "
            "sleep)");

  for (const auto& [key, result] : by_key) {
    EXPECT_EQ(result.job_id(), 1u);
    EXPECT_EQ(result.attempt(), 1u);
    EXPECT_EQ(result.worker(), "w1");
    switch (mode()) {
      case Mode::kSerial:
        EXPECT_EQ(result.executor(), "serial");
        break;
      case Mode::kThread:
        EXPECT_THAT(result.executor(), StartsWith("thread-"));
        break;
      case Mode::kAsync:
        EXPECT_EQ(result.executor(), "async");
        break;
      case Mode::kAuto:
        if (key.second == 2) {  // The cpu task.
          EXPECT_THAT(result.executor(), StartsWith("cpu-"));
        } else {
          EXPECT_EQ(result.executor(), "async");
        }
        break;
    }
    EXPECT_GT(result.started_us(), 0);
    EXPECT_GE(result.finished_us(), result.started_us());
    EXPECT_EQ(result.queued_us(), 0);
    EXPECT_EQ(result.dispatched_us(), 0);
  }
}

TEST_P(ExecutorTest, TimeoutsEndAsTimedOut) {
  executor_->Submit(Sleep(1, 0, kHourMs, 20));
  executor_->Submit(Cpu(1, 1, 1'000'000'000, 20));
  executor_->Submit(Sleep(1, 2, 1, kHourMs));
  ASSERT_TRUE(recorder_.WaitForResults(3));
  std::map<Key, v1::TaskResult> by_key = recorder_.results_by_key();
  EXPECT_EQ(by_key[Key(1, 0)].state(), v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(by_key[Key(1, 0)].error(), "timed out after 20ms");
  EXPECT_EQ(by_key[Key(1, 1)].state(), v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(by_key[Key(1, 1)].error(), "timed out after 20ms");
  EXPECT_EQ(by_key[Key(1, 2)].state(), v1::TASK_STATE_OK);
  EXPECT_EQ(by_key[Key(1, 2)].value(), "1");
}

// Fills every slot with job 1's endless sleeps, queues more of job 1 and
// then job 2's short tasks, and cancels job 1: its running sleeps stop, its
// queued ones never start, job 2 runs, and nothing ever exceeds the slots.
TEST_P(ExecutorTest, RunsSlotsAtOnceAndCancelStopsQueuedAndRunning) {
  const uint32_t k = slots();
  for (uint32_t i = 0; i < 3 * k; ++i) executor_->Submit(Sleep(1, i, kHourMs));
  for (uint32_t i = 0; i < 5 * k; ++i) {
    executor_->Submit(i % 2 == 0 ? Sleep(2, i, 1) : Echo(2, i, "e"));
  }
  ASSERT_TRUE(recorder_.WaitForStarts(k));
  EXPECT_EQ(recorder_.num_started(), k);
  EXPECT_EQ(recorder_.num_results(), 0u);

  executor_->CancelJob(1);
  ASSERT_TRUE(recorder_.WaitForResults(8 * k));
  std::map<Key, v1::TaskResult> by_key = recorder_.results_by_key();
  ASSERT_EQ(by_key.size(), 8 * k);
  std::set<std::string> running_labels;
  for (uint32_t i = 0; i < 3 * k; ++i) {
    const v1::TaskResult& result = by_key[Key(1, i)];
    EXPECT_EQ(result.state(), v1::TASK_STATE_CANCELLED) << i;
    EXPECT_EQ(result.error(), "job cancelled") << i;
    EXPECT_EQ(result.value(), "") << i;
    if (i < k) {  // Was running.
      EXPECT_TRUE(recorder_.started(Key(1, i))) << i;
      EXPECT_GT(result.started_us(), 0) << i;
      running_labels.insert(result.executor());
    } else {  // Was queued.
      EXPECT_FALSE(recorder_.started(Key(1, i))) << i;
      EXPECT_EQ(result.started_us(), 0) << i;
    }
  }
  for (uint32_t i = 0; i < 5 * k; ++i) {
    EXPECT_EQ(by_key[Key(2, i)].state(), v1::TASK_STATE_OK) << i;
  }

  EXPECT_EQ(recorder_.max_running(), static_cast<int>(k));
  EXPECT_LE(MaxOverlap(recorder_.results()), static_cast<int>(k));
  if (mode() == Mode::kThread) {
    // The k running sleeps held the k distinct threads.
    EXPECT_EQ(running_labels.size(), k);
  }
}

// For executors that run two tasks at once.
class MultiSlotExecutorTest : public ExecutorTest {};

INSTANTIATE_TEST_SUITE_P(Modes, MultiSlotExecutorTest,
                         testing::Values(ModeCase{Mode::kThread, 4},
                                         ModeCase{Mode::kAsync, 3},
                                         ModeCase{Mode::kAuto, 3}),
                         CaseName);

TEST_P(MultiSlotExecutorTest, CancelJobSparesOtherJobsRunningTasks) {
  executor_->Submit(Sleep(1, 0, kHourMs));
  executor_->Submit(Sleep(2, 0, 200));
  ASSERT_TRUE(recorder_.WaitForStarts(2));
  executor_->CancelJob(1);
  ASSERT_TRUE(recorder_.WaitForResults(2));
  std::map<Key, v1::TaskResult> by_key = recorder_.results_by_key();
  EXPECT_EQ(by_key[Key(1, 0)].state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(by_key[Key(2, 0)].state(), v1::TASK_STATE_OK);
  EXPECT_EQ(by_key[Key(2, 0)].value(), "200");
}

TEST_P(ExecutorTest, CancelStopsRunningCpu) {
  executor_->Submit(Cpu(1, 0, 1'000'000'000));
  ASSERT_TRUE(recorder_.WaitForStarts(1));
  executor_->CancelJob(1);
  ASSERT_TRUE(recorder_.WaitForResults(1));
  v1::TaskResult result = recorder_.results()[0];
  EXPECT_EQ(result.state(), v1::TASK_STATE_CANCELLED);
  EXPECT_GT(result.started_us(), 0);
}

TEST_P(ExecutorTest, CancelReachesOnlyTasksSubmittedBefore) {
  executor_->CancelJob(1);  // Nothing of job 1 yet: no effect.
  executor_->Submit(Echo(1, 0, "after"));
  ASSERT_TRUE(recorder_.WaitForResults(1));
  EXPECT_EQ(recorder_.results()[0].state(), v1::TASK_STATE_OK);
}

TEST_P(ExecutorTest, SubmitAfterShutdownIsCancelledAtOnce) {
  executor_->Submit(Echo(1, 0, "before"));
  executor_->Shutdown();
  EXPECT_EQ(recorder_.num_results(), 1u);
  executor_->Shutdown();  // Idempotent.
  executor_->Submit(Echo(1, 1, "after"));
  // Reported before Submit() returns.
  ASSERT_EQ(recorder_.num_results(), 2u);
  v1::TaskResult result = recorder_.results()[1];
  EXPECT_EQ(result.index(), 1u);
  EXPECT_EQ(result.state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(result.error(), "executor is shut down");
  EXPECT_EQ(result.started_us(), 0);
  EXPECT_GT(result.finished_us(), 0);
  EXPECT_FALSE(recorder_.started(Key(1, 1)));
}

TEST_P(ExecutorTest, ShutdownWaitsForEverySubmittedTask) {
  constexpr uint32_t kTasks = 30;
  for (uint32_t i = 0; i < kTasks; ++i) {
    switch (i % 3) {
      case 0:
        executor_->Submit(Sleep(1, i, 2));
        break;
      case 1:
        executor_->Submit(Echo(1, i, "e"));
        break;
      case 2:
        executor_->Submit(Cpu(1, i, 100));
        break;
    }
  }
  executor_->Shutdown();
  EXPECT_EQ(recorder_.num_results(), kTasks);  // No waiting needed.
  for (const auto& [key, result] : recorder_.results_by_key()) {
    EXPECT_EQ(result.state(), v1::TASK_STATE_OK);
  }
}

TEST_P(ExecutorTest, DestructorShutsDown) {
  for (uint32_t i = 0; i < 10; ++i) executor_->Submit(Sleep(1, i, 1));
  executor_.reset();
  EXPECT_EQ(recorder_.num_results(), 10u);
}

// Many tasks of several jobs, one job cancelled half-way, others submitted
// after shutdown: each (job, index) is reported exactly once, and a
// cancelled task is never OK unless it finished before the cancel.
TEST_P(ExecutorTest, EveryResultDeliveredExactlyOnce) {
  constexpr uint32_t kPerJob = 100;
  auto submit_job_tasks = [&](uint32_t from, uint32_t to) {
    for (uint32_t i = from; i < to; ++i) {
      for (uint64_t job : {1, 2, 3}) {
        executor_->Submit(i % 2 == 0 ? Sleep(job, i, 1)
                                     : Echo(job, i, absl::StrCat(i)));
      }
    }
  };
  submit_job_tasks(0, kPerJob / 2);
  executor_->CancelJob(2);
  submit_job_tasks(kPerJob / 2, kPerJob);
  executor_->CancelJob(2);
  executor_->Shutdown();
  executor_->Submit(Echo(4, 0, "late"));

  std::map<Key, v1::TaskResult> by_key = recorder_.results_by_key();
  EXPECT_EQ(recorder_.num_results(), 3 * kPerJob + 1);
  EXPECT_EQ(by_key.size(), 3 * kPerJob + 1);
  for (const auto& [key, result] : by_key) {
    if (key.first == 2) {
      EXPECT_THAT(result.state(),
                  AnyOf(v1::TASK_STATE_OK, v1::TASK_STATE_CANCELLED));
    } else if (key.first == 4) {
      EXPECT_EQ(result.state(), v1::TASK_STATE_CANCELLED);
    } else {
      EXPECT_EQ(result.state(), v1::TASK_STATE_OK);
    }
  }
}

TEST(SerialExecutorTest, NeverOverlapsAndUsesOneThread) {
  SteadyClock clock;
  Recorder recorder;
  auto executor = MakeHooked(Mode::kSerial, 1, recorder, &clock);
  for (uint32_t i = 0; i < 20; ++i) {
    executor->Submit(i % 2 == 0 ? Sleep(1, i, 1) : Cpu(1, i, 200));
  }
  executor->Shutdown();
  std::vector<v1::TaskResult> results = recorder.results();
  ASSERT_EQ(results.size(), 20u);
  EXPECT_EQ(MaxOverlap(results), 1);
  EXPECT_EQ(recorder.max_running(), 1);
  // In submission order, one after the other.
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].index(), i);
    EXPECT_EQ(results[i].executor(), "serial");
    if (i > 0) {
      EXPECT_GE(results[i].started_us(), results[i - 1].finished_us());
    }
  }
  EXPECT_EQ(recorder.result_threads().size(), 1u);
  EXPECT_FALSE(recorder.result_threads().contains(std::this_thread::get_id()));
}

TEST(ThreadExecutorTest, EachLabelIsOneThread) {
  constexpr int kThreads = 4;
  SteadyClock clock;
  Recorder recorder;
  auto executor = MakeHooked(Mode::kThread, kThreads, recorder, &clock);
  // Hold every thread with a sleep, so each label shows up.
  for (uint32_t i = 0; i < kThreads; ++i)
    executor->Submit(Sleep(1, i, kHourMs));
  ASSERT_TRUE(recorder.WaitForStarts(kThreads));
  for (uint32_t i = 0; i < 40; ++i) executor->Submit(Sleep(2, i, 1));
  executor->CancelJob(1);
  executor->Shutdown();

  auto threads_by_label = recorder.threads_by_label();
  absl::flat_hash_set<std::thread::id> all_threads;
  for (int i = 0; i < kThreads; ++i) {
    const std::string label = absl::StrCat("thread-", i);
    ASSERT_TRUE(threads_by_label.contains(label)) << label;
    EXPECT_EQ(threads_by_label[label].size(), 1u) << label;
    all_threads.insert(threads_by_label[label].begin(),
                       threads_by_label[label].end());
  }
  EXPECT_EQ(threads_by_label.size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(all_threads.size(), static_cast<size_t>(kThreads));
  EXPECT_LE(recorder.max_running(), kThreads);
  EXPECT_LE(MaxOverlap(recorder.results()), kThreads);
}

// Echo tasks submitted in batches take the thread pool's chunk paths (no
// start hook here): a cancel reports the job's queued tasks at once, tasks
// of other jobs and of the same job submitted after the cancel run, and
// each result carries exactly its task's fields.
TEST(ThreadExecutorTest, BatchedEchoTasksCancelOnlyTheirJob) {
  SteadyClock clock;
  Recorder recorder;
  std::unique_ptr<Executor> executor = MakeExecutor({.mode = Mode::kThread,
                                                     .slots = 2,
                                                     .worker_name = "w1",
                                                     .clock = &clock,
                                                     .sink = &recorder});
  // Both threads take these first (the queue is FIFO) and hold on to them,
  // so the batches below stay queued until job 9 is cancelled.
  executor->Submit(Sleep(9, 0, kHourMs));
  executor->Submit(Sleep(9, 1, kHourMs));
  std::vector<v1::Assignment> batch;
  for (uint32_t i = 0; i < 100; ++i) batch.push_back(Echo(1, i, "x"));
  for (uint32_t i = 0; i < 100; ++i) {
    batch.push_back(Echo(2, i, absl::StrCat("b", i)));
  }
  for (uint32_t i = 100; i < 150; ++i) batch.push_back(Echo(1, i, "x"));
  executor->SubmitBatch(std::move(batch));
  executor->CancelJob(1);
  // Reported by CancelJob() itself.
  EXPECT_EQ(recorder.num_results(), 150u);

  batch.clear();
  for (uint32_t i = 100; i < 200; ++i) {
    batch.push_back(Echo(2, i, absl::StrCat("b", i)));
  }
  for (uint32_t i = 200; i < 210; ++i) {
    batch.push_back(Echo(1, i, absl::StrCat("a", i)));
  }
  executor->SubmitBatch(std::move(batch));
  executor->CancelJob(9);
  executor->Shutdown();

  std::map<Key, v1::TaskResult> by_key = recorder.results_by_key();
  EXPECT_EQ(recorder.num_results(), 2u + 150 + 200 + 10);
  EXPECT_EQ(by_key.size(), 2u + 150 + 200 + 10);
  for (const auto& [key, result] : by_key) {
    SCOPED_TRACE(absl::StrCat("job ", key.first, " task ", key.second));
    EXPECT_EQ(result.attempt(), 1u);
    EXPECT_EQ(result.worker(), "w1");
    EXPECT_EQ(result.queued_us(), 0);
    EXPECT_EQ(result.dispatched_us(), 0);
    if (key.first == 9 || (key.first == 1 && key.second < 150)) {
      EXPECT_EQ(result.state(), v1::TASK_STATE_CANCELLED);
      EXPECT_EQ(result.value(), "");
      EXPECT_EQ(result.error(), "job cancelled");
    } else {
      EXPECT_EQ(result.state(), v1::TASK_STATE_OK);
      EXPECT_EQ(result.value(),
                absl::StrCat(key.first == 1 ? "a" : "b", key.second));
      EXPECT_EQ(result.error(), "");
      EXPECT_THAT(result.executor(), StartsWith("thread-"));
      EXPECT_GT(result.started_us(), 0);
      EXPECT_EQ(result.finished_us(), result.started_us());
    }
    if (key.first == 1 && key.second < 150) {
      // Never started.
      EXPECT_EQ(result.executor(), "thread");
      EXPECT_EQ(result.started_us(), 0);
    }
  }
}

TEST(AsyncExecutorTest, TenThousandSleepsShareOneThreadAtOnce) {
  constexpr uint32_t kTasks = 10'000;
  // Starting 10,000 takes the loop ~15 ms, and ~10x that under TSan.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr int64_t kSleepMs = 1000;
#else
  constexpr int64_t kSleepMs = 200;
#endif
  SteadyClock clock;
  Recorder recorder;
  // The first task holds the loop until all are submitted, so that how fast
  // this thread submits does not matter; then all start in one burst.
  absl::Notification all_submitted;
  auto on_start = [&all_submitted,
                   record = recorder.StartHook()](const v1::Assignment& a) {
    record(a);
    if (a.index() == 0) all_submitted.WaitForNotification();
  };
  AsyncExecutor executor({.mode = Mode::kAsync,
                          .slots = kTasks,
                          .clock = &clock,
                          .sink = &recorder},
                         on_start);
  for (uint32_t i = 0; i < kTasks; ++i) executor.Submit(Sleep(1, i, kSleepMs));
  all_submitted.Notify();
  ASSERT_TRUE(recorder.WaitForResults(kTasks));
  executor.Shutdown();

  std::vector<v1::TaskResult> results = recorder.results();
  ASSERT_EQ(results.size(), kTasks);
  int64_t last_start = 0;
  int64_t first_finish = INT64_MAX;
  for (const v1::TaskResult& result : results) {
    ASSERT_EQ(result.state(), v1::TASK_STATE_OK);
    ASSERT_EQ(result.value(), absl::StrCat(kSleepMs));
    ASSERT_EQ(result.executor(), "async");
    last_start = std::max(last_start, result.started_us());
    first_finish = std::min(first_finish, result.finished_us());
  }
  // Every sleep was in flight at the instant the last one started.
  EXPECT_LT(last_start, first_finish);
  EXPECT_EQ(recorder.max_running(), static_cast<int>(kTasks));
  EXPECT_EQ(recorder.result_threads().size(), 1u);
  EXPECT_FALSE(recorder.result_threads().contains(std::this_thread::get_id()));
}

}  // namespace
}  // namespace qfarm::executors
