#include "common/task_spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm {
namespace {

using ::testing::HasSubstr;

TEST(ParseTaskSpecTest, Sleep) {
  auto task = ParseTaskSpec("sleep:1s");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->kind(), v1::TASK_KIND_SLEEP);
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
  EXPECT_EQ(task->kind(), v1::TASK_KIND_ECHO);
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

TEST(ParseTaskSpecTest, UnknownKindAndMissingColon) {
  auto bad = ParseTaskSpec("nap:1s");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown kind \"nap\""));
  EXPECT_THAT(ParseTaskSpec("sleep").status().message(),
              HasSubstr("expected KIND:ARG"));
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
  EXPECT_THAT(ValidateTask(task).message(), HasSubstr("not a known task kind"));
  task.set_kind(v1::TASK_KIND_ECHO);
  task.set_text(std::string(2 << 20, 'x'));
  EXPECT_THAT(ValidateTask(task).message(), HasSubstr("over the maximum"));
  task.set_text("ok");
  task.set_timeout_ms(-5);
  EXPECT_THAT(ValidateTask(task).message(), HasSubstr("timeout_ms -5"));
}

TEST(TaskStateTest, Names) {
  EXPECT_EQ(TaskStateName(v1::TASK_STATE_TIMED_OUT), "timed_out");
  EXPECT_TRUE(IsFinal(v1::TASK_STATE_CANCELLED));
  EXPECT_FALSE(IsFinal(v1::TASK_STATE_RUNNING));
}

}  // namespace
}  // namespace qfarm
