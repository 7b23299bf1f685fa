#include "executors/task_kinds.h"

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/task_spec.h"
#include "executors/kind_runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::executors {
namespace {

using ::testing::HasSubstr;

// Far longer than any test may take, so that only cancellation ends it.
constexpr int64_t kHourMs = 3'600'000;

// Computed independently: `printf qfarm | openssl dgst -sha256`, and Python
// hashlib iterating sha256(digest).
constexpr char kCpu0[] =
    "0711fda8f654c73031d4e5cc54e36f7d3d3a447391af8435f5489c7e9d926e75";
constexpr char kCpu1[] =
    "7438316555053085e8332db3a573a17774178d881f8ae904b165c0f7b791736f";
constexpr char kCpu2[] =
    "334dc68d3a7e963febcd44c2e5ec7b2bb1a26426ffb0a0ae969b0f427a150cb5";
constexpr char kCpu1000[] =
    "0c467c8167958950b32af260e55892a03bfe1f92f49b873ae1433275235290d2";

v1::Task MakeTask(std::string kind, int64_t arg, int64_t timeout_ms = 0) {
  v1::Task task;
  task.set_kind(std::move(kind));
  task.set_arg(arg);
  task.set_timeout_ms(timeout_ms);
  return task;
}

TEST(CpuDigestTest, MatchesIndependentlyComputedDigests) {
  EXPECT_EQ(CpuDigestHex(0), kCpu0);
  EXPECT_EQ(CpuDigestHex(1), kCpu1);
  EXPECT_EQ(CpuDigestHex(2), kCpu2);
  // Crosses the 1024-iteration check point.
  EXPECT_EQ(CpuDigestHex(1000), kCpu1000);
}

TEST(RunTaskBlockingTest, Cpu) {
  CancelToken cancel;
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), MakeTask("cpu", 1), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_OK);
  EXPECT_EQ(outcome.value, kCpu1);
  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(RunTaskBlocking(BuiltInKinds(), MakeTask("cpu", 0), cancel).value,
            kCpu0);
  // Enough iterations to pass several check points.
  EXPECT_EQ(
      RunTaskBlocking(BuiltInKinds(), MakeTask("cpu", 5000, kHourMs), cancel)
          .value,
      CpuDigestHex(5000));
}

TEST(RunTaskBlockingTest, Echo) {
  CancelToken cancel;
  v1::Task task = MakeTask("echo", 0);
  task.set_text("hello world");
  TaskOutcome outcome = RunTaskBlocking(BuiltInKinds(), task, cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_OK);
  EXPECT_EQ(outcome.value, "hello world");
}

TEST(RunTaskBlockingTest, SleepValueIsMilliseconds) {
  CancelToken cancel;
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), MakeTask("sleep", 5), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_OK);
  EXPECT_EQ(outcome.value, "5");
  outcome = RunTaskBlocking(BuiltInKinds(), MakeTask("sleep", 0), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_OK);
  EXPECT_EQ(outcome.value, "0");
}

TEST(RunTaskBlockingTest, SleepWithinTimeoutIsOk) {
  CancelToken cancel;
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), MakeTask("sleep", 5, kHourMs), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_OK);
  EXPECT_EQ(outcome.value, "5");
}

TEST(RunTaskBlockingTest, SleepPastTimeoutTimesOut) {
  CancelToken cancel;
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), MakeTask("sleep", kHourMs, 20), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(outcome.value, "");
  EXPECT_EQ(outcome.error, "timed out after 20ms");
}

TEST(RunTaskBlockingTest, CpuPastTimeoutTimesOut) {
  CancelToken cancel;
  TaskOutcome outcome = RunTaskBlocking(
      BuiltInKinds(), MakeTask("cpu", 1'000'000'000, 20), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(outcome.error, "timed out after 20ms");
}

TEST(RunTaskBlockingTest, HttpRefusesOtherSchemes) {
  CancelToken cancel;
  v1::Task task = MakeTask("http", 0);
  task.set_text("file:///etc/passwd");
  TaskOutcome outcome = RunTaskBlocking(BuiltInKinds(), task, cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
  EXPECT_THAT(outcome.error, HasSubstr("must be an http:// or https:// URL"));
}

TEST(RunTaskBlockingTest, KindNotOfferedFails) {
  CancelToken cancel;
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), MakeTask("resize", 0), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
  EXPECT_EQ(outcome.error,
            "kind \"resize\" is not offered here (offered: cpu, echo, http, "
            "sleep)");
  // Without a name, the kind is the one at kind_index in the names.
  v1::Task by_index = MakeTask("", 0);
  by_index.set_kind_index(4);
  outcome = RunTaskBlocking(BuiltInKinds(), by_index, cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
  EXPECT_EQ(outcome.error,
            "kind of index 4 is not offered here (offered: cpu, echo, http, "
            "sleep)");
  outcome = RunTaskBlocking(BuiltInKinds(), MakeTask("no kind", 0), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
  EXPECT_THAT(outcome.error, HasSubstr("must be letters, digits"));
}

TEST(RunTaskBlockingTest, InvalidArgFails) {
  CancelToken cancel;
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), MakeTask("sleep", -1), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
  EXPECT_THAT(outcome.error, HasSubstr("negative"));
  outcome = RunTaskBlocking(BuiltInKinds(), MakeTask("cpu", -5), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
}

// The coordinator checks its limits, which its flags may raise; an
// executor checks none of them, so a task it accepted never fails here for
// one (common/task_spec.h, NoTaskLimits()).
TEST(RunTaskBlockingTest, TasksOverTheDefaultLimitsRun) {
  const TaskLimits defaults;
  CancelToken cancel;
  v1::Task echo = MakeTask("echo", 0, 25 * kHourMs);
  echo.set_text(std::string(2'000'000, 'x'));
  echo.set_max_attempts(defaults.max_attempts + 1);
  TaskOutcome outcome = RunTaskBlocking(BuiltInKinds(), echo, cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_OK) << outcome.error;
  EXPECT_EQ(outcome.value, echo.text());

  // A sleep and a cpu task over the maxima, cut short by their timeouts.
  outcome = RunTaskBlocking(BuiltInKinds(), MakeTask("sleep", 25 * kHourMs, 5),
                            cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_TIMED_OUT) << outcome.error;
  outcome = RunTaskBlocking(
      BuiltInKinds(), MakeTask("cpu", defaults.max_cpu_units + 1, 5), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_TIMED_OUT) << outcome.error;
}

TEST(RunEchoTest, TextOverTheDefaultLimitRuns) {
  v1::Assignment assignment;
  assignment.set_job_id(1);
  assignment.mutable_task()->set_kind("echo");
  assignment.mutable_task()->set_text(std::string(2'000'000, 'y'));
  assignment.mutable_task()->set_timeout_ms(25 * kHourMs);
  v1::TaskResult result;
  RunEcho(assignment, "w1", "thread-0", 1000, &result);
  EXPECT_EQ(result.state(), v1::TASK_STATE_OK) << result.error();
  EXPECT_EQ(result.value(), std::string(2'000'000, 'y'));
}

// A worker's tasks name their kind by index (Task.kind_index): the reason
// an echo is refused is its own, not a missing kind name.
TEST(RunEchoTest, RefusedTaskNamedByIndexGivesItsReason) {
  v1::Assignment assignment;
  assignment.mutable_task()->set_kind_index(0);
  assignment.mutable_task()->set_text("hi");
  assignment.mutable_task()->set_timeout_ms(-1);
  v1::TaskResult result;
  RunEcho(assignment, "w1", "thread-0", 1000, &result);
  EXPECT_EQ(result.state(), v1::TASK_STATE_FAILED);
  EXPECT_THAT(result.error(), HasSubstr("invalid task: timeout_ms -1"));
}

TEST(RunTaskBlockingTest, CancelledBeforeStartDoesNotRun) {
  CancelToken cancel;
  cancel.Cancel();
  for (const char* kind : {"sleep", "echo", "cpu"}) {
    TaskOutcome outcome =
        RunTaskBlocking(BuiltInKinds(), MakeTask(kind, kHourMs), cancel);
    EXPECT_EQ(outcome.state, v1::TASK_STATE_CANCELLED) << kind;
    EXPECT_EQ(outcome.value, "");
  }
}

TEST(RunTaskBlockingTest, CancelInterruptsSleep) {
  CancelToken cancel;
  // Cancel lands before or during the wait; either way the hour-long
  // sleep ends as CANCELLED (the test would hang otherwise).
  std::thread canceller([&cancel] { cancel.Cancel(); });
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), MakeTask("sleep", kHourMs), cancel);
  canceller.join();
  EXPECT_EQ(outcome.state, v1::TASK_STATE_CANCELLED);
}

TEST(RunTaskBlockingTest, CancelInterruptsCpu) {
  CancelToken cancel;
  std::thread canceller([&cancel] { cancel.Cancel(); });
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), MakeTask("cpu", 1'000'000'000), cancel);
  canceller.join();
  EXPECT_EQ(outcome.state, v1::TASK_STATE_CANCELLED);
}

TEST(SleepTest, WaitTimeIsCutByTimeout) {
  EXPECT_EQ(SleepWaitTime(MakeTask("sleep", 300)), absl::Milliseconds(300));
  EXPECT_EQ(SleepWaitTime(MakeTask("sleep", 300, 100)),
            absl::Milliseconds(100));
  EXPECT_EQ(SleepWaitTime(MakeTask("sleep", 300, 500)),
            absl::Milliseconds(300));
}

TEST(SleepTest, Outcome) {
  EXPECT_EQ(SleepOutcome(MakeTask("sleep", 300)).value, "300");
  EXPECT_EQ(SleepOutcome(MakeTask("sleep", 300, 300)).state, v1::TASK_STATE_OK);
  TaskOutcome late = SleepOutcome(MakeTask("sleep", 300, 100));
  EXPECT_EQ(late.state, v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(late.error, "timed out after 100ms");
}

TEST(CancelTokenTest, WaitForReportsCancellation) {
  CancelToken cancel;
  EXPECT_FALSE(cancel.cancelled());
  EXPECT_FALSE(cancel.WaitFor(absl::Milliseconds(1)));
  cancel.Cancel();
  cancel.Cancel();  // Idempotent.
  EXPECT_TRUE(cancel.cancelled());
  EXPECT_TRUE(cancel.WaitFor(absl::Hours(1)));
}

TEST(JobCancellationsTest, OneTokenPerJobUntilCancelled) {
  JobCancellations cancels;
  std::shared_ptr<CancelToken> a1 = cancels.Acquire(1);
  std::shared_ptr<CancelToken> a2 = cancels.Acquire(1);
  std::shared_ptr<CancelToken> b = cancels.Acquire(2);
  EXPECT_EQ(a1, a2);
  EXPECT_NE(a1, b);
  EXPECT_EQ(cancels.size(), 2u);

  EXPECT_EQ(cancels.Cancel(1), a1);
  EXPECT_TRUE(a1->cancelled());
  EXPECT_FALSE(b->cancelled());
  EXPECT_EQ(cancels.size(), 1u);
  // Tasks acquired after the cancel are not cancelled.
  std::shared_ptr<CancelToken> a3 = cancels.Acquire(1);
  EXPECT_NE(a3, a1);
  EXPECT_FALSE(a3->cancelled());
  // Releasing a cancelled token leaves the fresh one alone.
  cancels.Release(1, a1);
  cancels.Release(1, a2);
  EXPECT_EQ(cancels.size(), 2u);
  EXPECT_EQ(cancels.Cancel(1), a3);
}

TEST(JobCancellationsTest, ForgetsJobsWithNothingUnfinished) {
  JobCancellations cancels;
  std::shared_ptr<CancelToken> a1 = cancels.Acquire(1);
  std::shared_ptr<CancelToken> a2 = cancels.Acquire(1);
  cancels.Release(1, a1);
  EXPECT_EQ(cancels.size(), 1u);
  cancels.Release(1, a2);
  EXPECT_EQ(cancels.size(), 0u);
  EXPECT_EQ(cancels.Cancel(1), nullptr);
}

// Records what it is handed, and hands back messages left as a consumer
// might leave them (other values, errors, timestamps, unknown fields),
// `give_back[i]` of them
// on its i-th call: the buffer must reuse them without a trace.
class DirtyReturningSink : public ResultSink {
 public:
  explicit DirtyReturningSink(std::vector<size_t> give_back)
      : give_back_(std::move(give_back)) {}

  void OnResult(v1::TaskResult result) override {
    received_.push_back(std::move(result));
  }

  void OnResults(std::vector<v1::TaskResult>& results) override {
    for (v1::TaskResult& result : results) {
      received_.push_back(result);  // A copy: `results` keeps the messages.
    }
    const size_t n = calls_ < give_back_.size() ? give_back_[calls_] : 0;
    ++calls_;
    results.resize(n);
    for (size_t i = 0; i < n; ++i) {
      v1::TaskResult& result = results[i];
      // A field this build does not know, as a parse could leave.
      if (i % 2 == 0) {
        result.GetReflection()->MutableUnknownFields(&result)->AddVarint(99, 1);
      }
      result.set_job_id(99);
      result.set_index(99);
      result.set_attempt(9);
      result.set_state(v1::TASK_STATE_CANCELLED);
      result.set_value(std::string(100, 'v'));
      result.set_error("stale error");
      result.set_worker("stale-worker");
      result.set_executor("stale-executor");
      result.set_queued_us(1);
      result.set_dispatched_us(2);
      result.set_started_us(3);
      result.set_finished_us(4);
    }
  }

  const std::vector<v1::TaskResult>& received() const { return received_; }

 private:
  std::vector<size_t> give_back_;
  size_t calls_ = 0;
  std::vector<v1::TaskResult> received_;
};

v1::Assignment EchoAssignment(uint32_t index, std::string text,
                              int64_t timeout_ms = 0) {
  v1::Assignment assignment;
  assignment.set_job_id(5);
  assignment.set_index(index);
  assignment.set_attempt(2);
  assignment.mutable_task()->set_kind("echo");
  assignment.mutable_task()->set_text(std::move(text));
  assignment.mutable_task()->set_timeout_ms(timeout_ms);
  return assignment;
}

// Batches of several sizes, each built in messages the sink gave back (more
// or fewer than the next batch needs): every result is exactly the one
// RunTaskBlocking(BuiltInKinds(), ) and MakeResult() give.
TEST(ResultBufferTest, ReusedMessagesCarryNothingOver) {
  DirtyReturningSink sink({5, 1, 0, 7, 2, 3});
  ResultBuffer buffer;
  std::vector<v1::TaskResult> want;
  const std::vector<size_t> batch_sizes = {3, 4, 2, 1, 6, 5, 4};
  CancelToken never;
  uint32_t index = 0;
  for (size_t batch : batch_sizes) {
    for (size_t i = 0; i < batch; ++i, ++index) {
      // Every fifth is invalid (a negative timeout): FAILED with the reason.
      v1::Assignment assignment = EchoAssignment(
          index, absl::StrCat("text-", index), index % 5 == 4 ? -1 : 0);
      want.push_back(MakeResult(
          assignment, RunTaskBlocking(BuiltInKinds(), assignment.task(), never),
          "w1", index % 2 == 0 ? "thread-0" : "async", 1000 + index,
          1000 + index));
      RunEcho(assignment, "w1", index % 2 == 0 ? "thread-0" : "async",
              1000 + index, &buffer.Next());
    }
    EXPECT_EQ(buffer.size(), batch);
    buffer.FlushTo(&sink);
    EXPECT_TRUE(buffer.empty());
  }
  ASSERT_EQ(sink.received().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(sink.received()[i].DebugString(), want[i].DebugString())
        << "result " << i;
  }
  EXPECT_EQ(want[4].state(), v1::TASK_STATE_FAILED);
  EXPECT_THAT(want[4].error(), HasSubstr("invalid task"));
}

TEST(MakeResultTest, CopiesIdentityAndOutcome) {
  v1::Assignment assignment;
  assignment.set_job_id(7);
  assignment.set_index(3);
  assignment.set_attempt(2);
  v1::TaskResult result = MakeResult(
      assignment, {.state = v1::TASK_STATE_OK, .value = "v", .error = {}}, "w1",
      "thread-1", 10, 20);
  EXPECT_EQ(result.job_id(), 7u);
  EXPECT_EQ(result.index(), 3u);
  EXPECT_EQ(result.attempt(), 2u);
  EXPECT_EQ(result.state(), v1::TASK_STATE_OK);
  EXPECT_EQ(result.value(), "v");
  EXPECT_EQ(result.worker(), "w1");
  EXPECT_EQ(result.executor(), "thread-1");
  EXPECT_EQ(result.started_us(), 10);
  EXPECT_EQ(result.finished_us(), 20);
  EXPECT_EQ(result.queued_us(), 0);
  EXPECT_EQ(result.dispatched_us(), 0);
}

}  // namespace
}  // namespace qfarm::executors
