#include "common/task_spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm {
namespace {

using ::testing::HasSubstr;

TEST(ParseTaskSpecTest, Sleep) {
  auto task = ParseTaskSpec("sleep:1s");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->kind(), "sleep");
  EXPECT_EQ(task->arg(), 1000);
  EXPECT_EQ(ParseTaskSpec("sleep:250ms")->arg(), 250);
  EXPECT_EQ(ParseTaskSpec("sleep:1.5s")->arg(), 1500);
  EXPECT_EQ(ParseTaskSpec("sleep:0ms")->arg(), 0);
}

TEST(ParseTaskSpecTest, SleepNeedsAUnitAndSaneValue) {
  EXPECT_THAT(ParseTaskSpec("sleep:100").status().message(),
              HasSubstr("needs a unit"));
  EXPECT_THAT(ParseTaskSpec("sleep:-1s").status().message(),
              HasSubstr("negative"));
  EXPECT_THAT(ParseTaskSpec("sleep:48h").status().message(),
              HasSubstr("over the maximum"));
  EXPECT_THAT(ParseTaskSpec("sleep:abc").status().message(),
              HasSubstr("not a duration"));
  EXPECT_THAT(ParseTaskSpec("sleep:1500us").status().message(),
              HasSubstr("millisecond resolution"));
}

TEST(ParseTaskSpecTest, EchoKeepsPayloadVerbatim) {
  auto task = ParseTaskSpec("echo:a:b@c");
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->kind(), "echo");
  EXPECT_EQ(task->text(), "a:b@c");
  EXPECT_EQ(ParseTaskSpec("echo:")->text(), "");
}

TEST(ParseTaskSpecTest, Cpu) {
  EXPECT_EQ(ParseTaskSpec("cpu:20000")->arg(), 20000);
  EXPECT_THAT(ParseTaskSpec("cpu:lots").status().message(),
              HasSubstr("whole number"));
  EXPECT_THAT(ParseTaskSpec("cpu:-3").status().message(), HasSubstr("outside"));
}

TEST(ParseTaskSpecTest, Http) {
  EXPECT_TRUE(ParseTaskSpec("http:http://127.0.0.1:8080/x").ok());
  EXPECT_TRUE(ParseTaskSpec("http:https://example.test").ok());
  EXPECT_FALSE(ParseTaskSpec("http:ftp://h/x").ok());
  EXPECT_FALSE(ParseTaskSpec("http:http:///x").ok());
}

TEST(ParseTaskSpecTest, Options) {
  auto task = ParseTaskSpec("sleep:5s@timeout=1s,attempts=2");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->arg(), 5000);
  EXPECT_EQ(task->timeout_ms(), 1000);
  EXPECT_EQ(task->max_attempts(), 2u);
  EXPECT_FALSE(ParseTaskSpec("sleep:5s@timeout=0s").ok());
  EXPECT_FALSE(ParseTaskSpec("sleep:5s@attempts=0").ok());
  EXPECT_FALSE(ParseTaskSpec("sleep:5s@attempts=1000").ok());
}

TEST(ParseTaskSpecTest, OtherKindsTakeTheArgumentAsText) {
  auto task = ParseTaskSpec("reverse:hello@attempts=2");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->kind(), "reverse");
  EXPECT_EQ(task->text(), "hello");
  EXPECT_EQ(task->arg(), 0);
  EXPECT_EQ(task->max_attempts(), 2u);
  EXPECT_EQ(ParseTaskSpec("action:3")->text(), "3");
  EXPECT_FALSE(IsBuiltInKind("reverse"));
  EXPECT_TRUE(IsBuiltInKind("echo"));
}

TEST(ParseTaskSpecTest, BadKindNameAndMissingColon) {
  auto bad = ParseTaskSpec("n a:1s");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("kind name \"n a\""));
  EXPECT_THAT(ParseTaskSpec(":x").status().message(),
              HasSubstr("kind name is empty"));
  EXPECT_THAT(ParseTaskSpec("sleep").status().message(),
              HasSubstr("expected KIND:ARG"));
}

TEST(KindNameTest, LettersDigitsAndThreeMarksStartingWithALetter) {
  for (const char* good : {"a", "resize", "img.resize-v2", "A_1"}) {
    EXPECT_TRUE(ValidateKindName(good).ok()) << good;
  }
  EXPECT_TRUE(ValidateKindName(std::string(kMaxKindNameBytes, 'k')).ok());
  EXPECT_THAT(ValidateKindName("").message(), HasSubstr("empty"));
  EXPECT_THAT(
      ValidateKindName(std::string(kMaxKindNameBytes + 1, 'k')).message(),
      HasSubstr("65 bytes is over the maximum of 64"));
  for (const char* bad :
       {"1abc", "_x", "a b", "a/b", "a:b", "\xc3\xa9t\xc3\xa9", "a\n"}) {
    absl::Status status = ValidateKindName(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("starting with a letter")) << bad;
  }
}

TEST(KindNameTest, OfferedKindsAreAtLeastOneAndValid) {
  EXPECT_TRUE(ValidateOfferedKinds({"echo", "reverse", "echo"}).ok());
  EXPECT_THAT(ValidateOfferedKinds({}).message(),
              HasSubstr("must offer at least one kind"));
  EXPECT_THAT(ValidateOfferedKinds({"echo", "bad kind"}).message(),
              HasSubstr("hello.kinds: kind name \"bad kind\""));
  EXPECT_THAT(
      ValidateOfferedKinds(std::vector<std::string>(kMaxOfferedKinds + 1, "k"))
          .message(),
      HasSubstr("over the maximum of 1024"));
}

TEST(FormatTaskSpecTest, RoundTrips) {
  for (const char* spec :
       {"sleep:1s", "sleep:250ms", "echo:hi there", "cpu:20000",
        "sleep:5s@timeout=1s", "echo:x@timeout=2s,attempts=3",
        "http:http://127.0.0.1:1/a"}) {
    auto task = ParseTaskSpec(spec);
    ASSERT_TRUE(task.ok()) << spec << ": " << task.status();
    EXPECT_EQ(FormatTaskSpec(*task), spec);
  }
}

TEST(ValidateTaskTest, NamesFieldAndRule) {
  v1::Task task;
  EXPECT_THAT(ValidateTask(task).message(), HasSubstr("kind name is empty"));
  task.set_kind("bad/kind");
  EXPECT_THAT(ValidateTask(task).message(), HasSubstr("\"bad/kind\""));
  task.set_kind("resize");
  task.set_data(std::string(2 << 20, 'x'));
  EXPECT_THAT(ValidateTask(task).message(),
              HasSubstr("data of 2097152 bytes is over the maximum"));
  task.set_kind("echo");
  task.set_data("x");
  EXPECT_THAT(ValidateTask(task).message(), HasSubstr("echo takes no data"));
  task.clear_data();
  task.set_text(std::string(2 << 20, 'x'));
  EXPECT_THAT(ValidateTask(task).message(), HasSubstr("over the maximum"));
  task.set_text("ok");
  task.set_timeout_ms(-5);
  EXPECT_THAT(ValidateTask(task).message(), HasSubstr("timeout_ms -5"));
}

// NoTaskLimits() leaves the rules: what a worker checks.
TEST(NoTaskLimitsTest, BoundsNothingButKeepsTheRules) {
  const TaskLimits none = NoTaskLimits();
  const TaskLimits defaults;
  v1::Task echo;
  echo.set_kind("echo");
  echo.set_text(std::string(defaults.max_text_bytes + 1, 'x'));
  echo.set_timeout_ms(absl::ToInt64Milliseconds(defaults.max_timeout) + 1);
  echo.set_max_attempts(defaults.max_attempts + 1);
  EXPECT_FALSE(ValidateTask(echo, defaults).ok());
  EXPECT_TRUE(ValidateTask(echo, none).ok());
  v1::Task resize;
  resize.set_kind("resize");
  resize.set_data(std::string(defaults.max_text_bytes + 1, 'd'));
  EXPECT_TRUE(ValidateTask(resize, none).ok());
  v1::Task sleep;
  sleep.set_kind("sleep");
  sleep.set_arg(absl::ToInt64Milliseconds(defaults.max_sleep) + 1);
  EXPECT_FALSE(ValidateTask(sleep, defaults).ok());
  EXPECT_TRUE(ValidateTask(sleep, none).ok());
  v1::Task cpu;
  cpu.set_kind("cpu");
  cpu.set_arg(INT64_MAX);
  EXPECT_TRUE(ValidateTask(cpu, none).ok());

  // The rules stay.
  sleep.set_arg(-1);
  EXPECT_THAT(ValidateTask(sleep, none).message(), HasSubstr("negative"));
  cpu.set_arg(-1);
  EXPECT_FALSE(ValidateTask(cpu, none).ok());
  echo.set_timeout_ms(-1);
  EXPECT_THAT(ValidateTask(echo, none).message(), HasSubstr("timeout_ms -1"));
  echo.set_timeout_ms(0);
  echo.set_data("x");
  EXPECT_THAT(ValidateTask(echo, none).message(), HasSubstr("takes no data"));
  v1::Task http;
  http.set_kind("http");
  http.set_text("ftp://h/");
  EXPECT_THAT(ValidateTask(http, none).message(), HasSubstr("http url"));
  v1::Task bad;
  bad.set_kind("no kind");
  EXPECT_THAT(ValidateTask(bad, none).message(), HasSubstr("must be letters"));

  // A spec over the default limits parses under none.
  auto big = ParseTaskSpec("echo:" + std::string(2'000'000, 'e'), none);
  ASSERT_TRUE(big.ok()) << big.status().message().substr(0, 200);
  EXPECT_EQ(big->text().size(), 2'000'000u);
  EXPECT_TRUE(ParseTaskSpec("sleep:48h", none).ok());
}

TEST(SetMaxPayloadBytesTest, RaisesTheValueLimitToThePayloadLimit) {
  TaskLimits limits;
  SetMaxPayloadBytes(4 << 20, &limits);
  EXPECT_EQ(limits.max_text_bytes, size_t{4} << 20);
  EXPECT_EQ(limits.max_value_bytes, size_t{4} << 20);
  // A smaller payload limit leaves the value limit at its default.
  TaskLimits small;
  SetMaxPayloadBytes(100, &small);
  EXPECT_EQ(small.max_text_bytes, 100u);
  EXPECT_EQ(small.max_value_bytes, TaskLimits().max_value_bytes);
}

// Errors quote what was given through Abbreviate(): a long input makes a
// short message.
TEST(ParseTaskSpecTest, ErrorsQuoteALongSpecShort) {
  const std::string payload(2'000'000, 'x');
  absl::Status echo = ParseTaskSpec("echo:" + payload).status();
  EXPECT_THAT(echo.message(), HasSubstr("... (2000005 bytes)\": text of "
                                        "2000000 bytes is over the maximum"));
  EXPECT_LT(echo.message().size(), 200u);
  absl::Status http = ParseTaskSpec("http:" + payload, NoTaskLimits()).status();
  EXPECT_THAT(http.message(), HasSubstr("http url \"xxx"));
  EXPECT_THAT(http.message(), HasSubstr("... (2000000 bytes)\" must be"));
  EXPECT_LT(http.message().size(), 300u);
  absl::Status sleep = ParseTaskSpec("sleep:" + payload).status();
  EXPECT_LT(sleep.message().size(), 300u);
  EXPECT_THAT(sleep.message(), HasSubstr("(2000000 bytes)"));
  absl::Status duration = ParseDurationFlag(payload + "s").status();
  EXPECT_LT(duration.message().size(), 200u);
  EXPECT_THAT(duration.message(), HasSubstr("(2000001 bytes)"));
  absl::Status syntax = ParseTaskSpec(payload).status();
  EXPECT_LT(syntax.message().size(), 200u);
  EXPECT_THAT(syntax.message(), HasSubstr("expected KIND:ARG"));
}

TEST(TaskStateTest, Names) {
  EXPECT_EQ(TaskStateName(v1::TASK_STATE_TIMED_OUT), "timed_out");
  EXPECT_TRUE(IsFinal(v1::TASK_STATE_CANCELLED));
  EXPECT_FALSE(IsFinal(v1::TASK_STATE_RUNNING));
}

}  // namespace
}  // namespace qfarm
