#include "client/local_pool.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/interrupt.h"
#include "executors/executor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::client {
namespace {

using ::testing::StartsWith;

// Echo tasks "t<i>"; every tenth is invalid (a negative timeout) and fails.
std::vector<v1::Task> EchoTasks(size_t n) {
  std::vector<v1::Task> tasks(n);
  for (size_t i = 0; i < n; ++i) {
    tasks[i].set_kind("echo");
    tasks[i].set_text(absl::StrCat("t", i));
    if (i % 10 == 9) tasks[i].set_timeout_ms(-1);
  }
  return tasks;
}

void ExpectEchoResults(const std::vector<v1::TaskResult>& results,
                       executors::Mode mode) {
  ASSERT_EQ(results.size(), 3000u);
  std::vector<int> seen(results.size(), 0);
  for (const v1::TaskResult& result : results) {
    ASSERT_LT(result.index(), results.size());
    const uint32_t i = result.index();
    SCOPED_TRACE(absl::StrCat("task ", i));
    ++seen[i];
    EXPECT_EQ(result.job_id(), 0u);
    EXPECT_EQ(result.attempt(), 1u);
    EXPECT_EQ(result.worker(), "local");
    // The auto mode runs echo tasks on its event loop.
    EXPECT_THAT(result.executor(),
                StartsWith(mode == executors::Mode::kAuto
                               ? "async"
                               : std::string(executors::ModeName(mode))));
    EXPECT_GT(result.queued_us(), 0);
    EXPECT_EQ(result.dispatched_us(), result.queued_us());
    EXPECT_GT(result.started_us(), 0);
    EXPECT_EQ(result.finished_us(), result.started_us());
    if (i % 10 == 9) {
      EXPECT_EQ(result.state(), v1::TASK_STATE_FAILED);
      EXPECT_EQ(result.value(), "");
      EXPECT_THAT(result.error(), StartsWith("invalid task: "));
    } else {
      EXPECT_EQ(result.state(), v1::TASK_STATE_OK);
      EXPECT_EQ(result.value(), absl::StrCat("t", i));
      EXPECT_EQ(result.error(), "");
    }
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << i;
}

class LocalPoolTest : public testing::TestWithParam<executors::Mode> {};

INSTANTIATE_TEST_SUITE_P(
    Modes, LocalPoolTest,
    testing::Values(executors::Mode::kSerial, executors::Mode::kThread,
                    executors::Mode::kAsync, executors::Mode::kAuto),
    [](const testing::TestParamInfo<executors::Mode>& info) {
      return std::string(executors::ModeName(info.param));
    });

// A window far smaller than the job, so the executor's messages (results and
// assignments) are handed back and filled again many times over: no result
// shows anything of an earlier task.
TEST_P(LocalPoolTest, MovedTasksGiveEachResultOnceWithItsOwnFields) {
  std::vector<v1::TaskResult> results;
  absl::Status status = RunLocalBatches(
      EchoTasks(3000), {.mode = GetParam(), .slots = 2, .window = 64},
      [&results](std::vector<v1::TaskResult>& batch) {
        // Copies: the batch's messages go back to the executor.
        results.insert(results.end(), batch.begin(), batch.end());
      });
  ASSERT_TRUE(status.ok()) << status;
  ExpectEchoResults(results, GetParam());
}

TEST_P(LocalPoolTest, CopiedTasksGiveTheSameResults) {
  const std::vector<v1::Task> tasks = EchoTasks(3000);
  std::vector<v1::TaskResult> results;
  absl::Status status =
      RunLocal(tasks, {.mode = GetParam(), .slots = 2, .window = 64},
               [&results](v1::TaskResult&& result) {
                 results.push_back(std::move(result));
               });
  ASSERT_TRUE(status.ok()) << status;
  ExpectEchoResults(results, GetParam());
  EXPECT_EQ(tasks[5].text(), "t5");  // Left as it was.
}

TEST_P(LocalPoolTest, InterruptCancelsWhatIsLeft) {
  Interrupt interrupt;
  interrupt.Fire();  // Before the run: its handler runs at once.
  std::vector<v1::TaskResult> results;
  absl::Status status = RunLocalBatches(
      EchoTasks(3000),
      {.mode = GetParam(), .slots = 2, .interrupt = &interrupt, .window = 64},
      [&results](std::vector<v1::TaskResult>& batch) {
        for (v1::TaskResult& result : batch) {
          results.push_back(std::move(result));
        }
      });
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(results.size(), 3000u);
  std::vector<int> seen(results.size(), 0);
  for (const v1::TaskResult& result : results) {
    ASSERT_LT(result.index(), results.size());
    ++seen[result.index()];
    EXPECT_EQ(result.state(), v1::TASK_STATE_CANCELLED);
    EXPECT_EQ(result.error(), "job cancelled");
    EXPECT_EQ(result.started_us(), 0);
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << i;
}

}  // namespace
}  // namespace qfarm::client
