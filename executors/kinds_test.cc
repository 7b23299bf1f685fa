// The kind registry (qfarm/kinds.h) and registered kinds on every executor,
// without a network.
#include "qfarm/kinds.h"

#include <stdexcept>
#include <string>

#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "common/task_spec.h"
#include "executors/executor.h"
#include "executors/executor_test_util.h"
#include "executors/kind_runner.h"
#include "executors/task_kinds.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::executors {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Task Task(std::string kind, std::string text, int64_t timeout_ms = 0) {
  v1::Task task;
  task.set_kind(std::move(kind));
  task.set_text(std::move(text));
  task.set_timeout_ms(timeout_ms);
  return task;
}

// Answers with `answer`, or throws when it is "throw".
Kinds Answering() {
  Kinds kinds;
  kinds.AddBlocking(
      "answer", [](const TaskInput& in) -> absl::StatusOr<std::string> {
        if (in.text() == "throw") throw std::runtime_error("boom");
        if (in.text() == "cancelled") return absl::CancelledError("stopped");
        if (in.text() == "late") return absl::DeadlineExceededError("too late");
        if (in.text() == "bad") return absl::NotFoundError("no such row");
        // Over a coordinator's default result limit, which it checks.
        if (in.text() == "large") {
          return std::string(TaskLimits().max_value_bytes + 1, 'l');
        }
        // Over what any coordinator accepts.
        if (in.text() == "big") {
          return std::string(kMaxPayloadBytesCeiling + 1, 'b');
        }
        return std::string(in.text());
      });
  // Waits on the loop until the deadline or a cancel stops it.
  kinds.AddCoroutine(
      "wait",
      [](const TaskInput& in) -> asio::awaitable<absl::StatusOr<std::string>> {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        timer.expires_after(
            std::chrono::milliseconds(in.text() == "short" ? 1 : 600'000));
        co_await timer.async_wait(asio::use_awaitable);
        co_return std::string("waited");
      });
  return kinds;
}

TEST(KindsTest, BuiltInKindsAndRegistration) {
  Kinds kinds = Kinds::BuiltIn();
  EXPECT_THAT(kinds.names(), ElementsAre("cpu", "echo", "http", "sleep"));
  EXPECT_TRUE(kinds.IsInstant("echo"));
  kinds.AddBlocking("reverse",
                    [](const TaskInput& in) -> absl::StatusOr<std::string> {
                      return std::string(in.text().rbegin(), in.text().rend());
                    });
  ASSERT_NE(kinds.Find("reverse"), nullptr);
  EXPECT_FALSE(kinds.Find("reverse")->runs_on_loop());
  // A user's echo replaces the built-in one, which is no longer instant.
  kinds.AddBlocking("echo",
                    [](const TaskInput&) -> absl::StatusOr<std::string> {
                      return std::string("mine");
                    });
  EXPECT_FALSE(kinds.IsInstant("echo"));
  kinds.Drop("http");
  EXPECT_THAT(kinds.names(), ElementsAre("cpu", "echo", "reverse", "sleep"));
  EXPECT_TRUE(kinds.status().ok());
}

TEST(KindsTest, ATaskNamesItsKindByNameOrByIndexInNames) {
  Kinds kinds = Kinds::BuiltIn();  // cpu, echo, http, sleep.
  v1::Task task;
  task.set_kind_index(1);
  ASSERT_NE(KindOf(kinds, task), nullptr);
  EXPECT_EQ(KindOf(kinds, task)->name, "echo");
  EXPECT_TRUE(IsInstant(kinds, task));
  task.set_kind_index(3);
  EXPECT_EQ(KindOf(kinds, task)->name, "sleep");
  EXPECT_FALSE(IsInstant(kinds, task));
  task.set_kind_index(4);
  EXPECT_EQ(KindOf(kinds, task), nullptr);
  // A name wins over an index.
  task.set_kind("cpu");
  EXPECT_EQ(KindOf(kinds, task)->name, "cpu");
  // Indexes follow names() as kinds come and go.
  kinds.AddBlocking("action",
                    [](const TaskInput&) -> absl::StatusOr<std::string> {
                      return std::string("done");
                    });
  kinds.Drop("cpu");
  EXPECT_THAT(kinds.names(), ElementsAre("action", "echo", "http", "sleep"));
  task.clear_kind();
  for (uint32_t i = 0; i < kinds.size(); ++i) {
    task.set_kind_index(i);
    EXPECT_EQ(KindOf(kinds, task)->name, kinds.names()[i]);
    EXPECT_EQ(IsInstant(kinds, task), i == 1) << i;
  }
  // A copy finds its own kinds, not the original's.
  const Kinds copy = kinds;
  task.set_kind_index(0);
  EXPECT_EQ(KindOf(copy, task), copy.Find("action"));
}

TEST(KindsTest, BadNamesAndEmptyFunctionsAreRemembered) {
  Kinds kinds;
  kinds.AddBlocking("bad name",
                    [](const TaskInput&) -> absl::StatusOr<std::string> {
                      return std::string();
                    });
  EXPECT_EQ(kinds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(kinds.status().message(), HasSubstr("\"bad name\""));
  EXPECT_TRUE(kinds.empty());
  Kinds empty_fn;
  empty_fn.AddCoroutine("fine", nullptr);
  EXPECT_THAT(empty_fn.status().message(),
              HasSubstr("kind \"fine\": the coroutine is empty"));
}

TEST(RegisteredKindTest, AnswersBecomeOutcomes) {
  const Kinds kinds = Answering();
  CancelToken cancel;
  auto run = [&](const std::string& text) {
    return RunTaskBlocking(kinds, Task("answer", text), cancel);
  };
  EXPECT_EQ(run("hi").state, v1::TASK_STATE_OK);
  EXPECT_EQ(run("hi").value, "hi");
  EXPECT_EQ(run("throw").state, v1::TASK_STATE_FAILED);
  EXPECT_EQ(run("throw").error, "exception: boom");
  EXPECT_EQ(run("cancelled").state, v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(run("late").state, v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(run("bad").state, v1::TASK_STATE_FAILED);
  EXPECT_EQ(run("bad").error, "no such row");
  // The coordinator checks its own result limit; the executor only what no
  // coordinator would take.
  EXPECT_EQ(run("large").state, v1::TASK_STATE_OK);
  EXPECT_EQ(run("large").value.size(), TaskLimits().max_value_bytes + 1);
  const TaskOutcome big = run("big");
  EXPECT_EQ(big.state, v1::TASK_STATE_FAILED);
  EXPECT_THAT(big.error, HasSubstr("over the result limit"));
}

TEST(RegisteredKindTest, CoroutineOnAThreadRunsToItsEndOrItsDeadline) {
  const Kinds kinds = Answering();
  CancelToken cancel;
  TaskOutcome done = RunTaskBlocking(kinds, Task("wait", "short"), cancel);
  EXPECT_EQ(done.state, v1::TASK_STATE_OK);
  EXPECT_EQ(done.value, "waited");
  TaskOutcome timed_out =
      RunTaskBlocking(kinds, Task("wait", "long", /*timeout_ms=*/20), cancel);
  EXPECT_EQ(timed_out.state, v1::TASK_STATE_TIMED_OUT);
}

class RegisteredKindModesTest : public ::testing::TestWithParam<Mode> {};

INSTANTIATE_TEST_SUITE_P(Modes, RegisteredKindModesTest,
                         ::testing::Values(Mode::kSerial, Mode::kThread,
                                           Mode::kAsync, Mode::kAuto));

// Both forms run in every mode; a cancel stops a waiting coroutine on the
// loop.
TEST_P(RegisteredKindModesTest, BothFormsRunAndCancelStopsACoroutine) {
  const Kinds kinds = Answering();
  Recorder recorder;
  auto executor = MakeExecutor(
      {.mode = GetParam(), .slots = 3, .sink = &recorder, .kinds = &kinds});
  v1::Assignment answer = Assign(1, 0, "answer", 0);
  answer.mutable_task()->set_text("hello");
  v1::Assignment wait = Assign(1, 1, "wait", 0);
  wait.mutable_task()->set_text("short");
  v1::Assignment unknown = Assign(1, 2, "resize", 0);
  // By index in kinds.names() (answer, wait), as the coordinator sends them.
  v1::Assignment by_index = Assign(1, 3, "", 0);
  by_index.mutable_task()->set_kind_index(1);
  by_index.mutable_task()->set_text("short");
  v1::Assignment past_the_end = Assign(1, 4, "", 0);
  past_the_end.mutable_task()->set_kind_index(2);
  executor->Submit(answer);
  executor->Submit(wait);
  executor->Submit(unknown);
  executor->Submit(by_index);
  executor->Submit(past_the_end);
  ASSERT_TRUE(recorder.WaitForResults(5));
  std::map<Key, v1::TaskResult> got = recorder.results_by_key();
  EXPECT_EQ(got[Key(1, 0)].value(), "hello");
  EXPECT_EQ(got[Key(1, 1)].value(), "waited");
  EXPECT_THAT(got[Key(1, 2)].error(),
              HasSubstr("kind \"resize\" is not offered here"));
  EXPECT_EQ(got[Key(1, 3)].value(), "waited");
  EXPECT_THAT(got[Key(1, 4)].error(),
              HasSubstr("kind of index 2 is not offered here (offered: "
                        "answer, wait)"));
  if (GetParam() == Mode::kAsync || GetParam() == Mode::kAuto) {
    v1::Assignment forever = Assign(2, 0, "wait", 0);
    forever.mutable_task()->set_text("long");
    executor->Submit(forever);
    // Cancelled in the queue or while it waits: either way at once, not
    // after its minute.
    executor->CancelJob(2);
    ASSERT_TRUE(recorder.WaitForResults(6));
    EXPECT_EQ(recorder.results_by_key()[Key(2, 0)].state(),
              v1::TASK_STATE_CANCELLED);
  }
  executor->Shutdown();
}

}  // namespace
}  // namespace qfarm::executors
