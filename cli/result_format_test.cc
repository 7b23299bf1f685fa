#include "cli/result_format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::client {
namespace {

v1::TaskResult Result() {
  v1::TaskResult r;
  r.set_job_id(7);
  r.set_index(3);
  r.set_attempt(1);
  r.set_state(v1::TASK_STATE_OK);
  r.set_value("1000");
  r.set_worker("worker-2");
  r.set_executor("thread-1");
  r.set_queued_us(10);
  r.set_dispatched_us(20);
  r.set_started_us(30);
  r.set_finished_us(40);
  return r;
}

TEST(ResultFormatTest, TextLineNamesIndexStatusExecutorValue) {
  EXPECT_EQ(FormatResultText(Result()),
            "   3  ok         worker-2/thread-1     1000");
  v1::TaskResult failed = Result();
  failed.set_state(v1::TASK_STATE_TIMED_OUT);
  failed.set_error("timed out after 50ms");
  EXPECT_EQ(FormatResultText(failed),
            "   3  timed_out  worker-2/thread-1     timed out after 50ms");
  v1::TaskResult cancelled;
  cancelled.set_state(v1::TASK_STATE_CANCELLED);
  EXPECT_THAT(FormatResultText(cancelled), ::testing::HasSubstr("  -  "));
}

TEST(ResultFormatTest, JsonHasEveryField) {
  EXPECT_EQ(FormatResultJson(Result()),
            "{\"index\":3,\"job_id\":7,\"status\":\"ok\",\"value\":\"1000\","
            "\"error\":\"\",\"worker\":\"worker-2\",\"executor\":\"thread-1\","
            "\"attempt\":1,\"queued_us\":10,\"dispatched_us\":20,"
            "\"started_us\":30,\"finished_us\":40}");
}

TEST(ResultFormatTest, JsonQuoteEscapes) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\t"), "\"a\\\"b\\\\c\\n\\t\"");
  EXPECT_EQ(JsonQuote(std::string("\x01", 1)), "\"\\u0001\"");
  EXPECT_EQ(JsonQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // Valid UTF-8 kept.
  EXPECT_EQ(JsonQuote("\xff"), "\"\\ufffd\"");             // Invalid replaced.
  EXPECT_EQ(JsonQuote("\xc3"), "\"\\ufffd\"");             // Truncated.
}

TEST(ResultFormatTest, JobInfo) {
  v1::JobInfo info;
  info.set_job_id(4);
  info.set_state(v1::JOB_STATE_DONE);
  info.set_total(2);
  info.set_ok(2);
  EXPECT_EQ(FormatJobInfo(info),
            "job 4: done, 2 tasks: 0 queued, 0 running, 2 ok, 0 failed, 0 "
            "timed out, 0 cancelled");
}

}  // namespace
}  // namespace qfarm::client
