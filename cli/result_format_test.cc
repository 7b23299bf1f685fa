#include "cli/result_format.h"

#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
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

// The JSON Lines contract of `qfarm map --output=json` (README): one object
// a line, the documented names, numbers as JSON numbers, any payload as a
// valid JSON string.
TEST(ResultFormatTest, JsonLineParsesWithDocumentedNamesAndTypes) {
  v1::TaskResult r = Result();
  r.set_job_id(uint64_t{1} << 40);
  r.set_finished_us(1'796'633'422'157'104);
  const std::string r_fffd = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> payloads = {
      {"caf\xC3\xA9 \xF0\x9F\x98\x80", "caf\xC3\xA9 \xF0\x9F\x98\x80"},
      {"a\"b\\c\n\t\x01</x>", "a\"b\\c\n\t\x01</x>"},
      {"bad\xFF"
       "byte\xC3",
       "bad" + r_fffd + "byte" + r_fffd},
      {"\xED\xA0\x80", r_fffd + r_fffd + r_fffd}};
  for (const auto& [payload, expected] : payloads) {
    r.set_value(payload);
    r.set_error(payload);
    const std::string line = FormatResultJson(r);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    google::protobuf::Struct object;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &object).ok())
        << line;
    const auto& fields = object.fields();
    EXPECT_EQ(fields.size(), 12u);
    const auto number = [&fields](const std::string& name) {
      EXPECT_EQ(fields.at(name).kind_case(),
                google::protobuf::Value::kNumberValue)
          << name;
      return fields.at(name).number_value();
    };
    const auto text = [&fields](const std::string& name) {
      EXPECT_EQ(fields.at(name).kind_case(),
                google::protobuf::Value::kStringValue)
          << name;
      return fields.at(name).string_value();
    };
    EXPECT_EQ(number("index"), 3);
    EXPECT_EQ(number("job_id"), static_cast<double>(uint64_t{1} << 40));
    EXPECT_EQ(text("status"), "ok");
    EXPECT_EQ(text("value"), expected);
    EXPECT_EQ(text("error"), expected);
    EXPECT_EQ(text("worker"), "worker-2");
    EXPECT_EQ(text("executor"), "thread-1");
    EXPECT_EQ(number("attempt"), 1);
    EXPECT_EQ(number("queued_us"), 10);
    EXPECT_EQ(number("dispatched_us"), 20);
    EXPECT_EQ(number("started_us"), 30);
    EXPECT_EQ(number("finished_us"), 1'796'633'422'157'104.0);
    // In the documented order.
    EXPECT_LT(line.find("\"job_id\""), line.find("\"status\""));
    EXPECT_LT(line.find("\"executor\""), line.find("\"attempt\""));
  }
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
