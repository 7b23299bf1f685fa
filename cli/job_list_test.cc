#include "cli/job_list.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qfarm::client {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::JobInfo RunningJob() {
  v1::JobInfo job;
  job.set_job_id(12);
  job.set_state(v1::JOB_STATE_RUNNING);
  job.set_total(10'000);
  job.set_ok(1'200);
  job.set_failed(34);
  job.set_running(96);
  job.set_queued(10'000 - 1'234 - 96);
  job.set_created_us(1'000'000);
  job.set_client("ipv4:10.0.0.7");
  return job;
}

TEST(JobListTest, ParsesTheFourStatesAndNamesThemOnError) {
  EXPECT_EQ(*ParseJobState("running"), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(*ParseJobState("done"), v1::JOB_STATE_DONE);
  EXPECT_EQ(*ParseJobState("failed"), v1::JOB_STATE_FAILED);
  EXPECT_EQ(*ParseJobState("cancelled"), v1::JOB_STATE_CANCELLED);
  absl::StatusOr<v1::JobState> bad = ParseJobState("finished");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("expected running, done, failed or cancelled"));
  EXPECT_FALSE(ParseJobState("").ok());
  EXPECT_FALSE(ParseJobState("unknown").ok());
}

TEST(JobListTest, ARunningJobsTimeRunsToTheListsClock) {
  const v1::JobInfo job = RunningJob();
  // 2 s after its creation, 1,234 finished.
  EXPECT_EQ(JobWallTime(job, 3'000'000), absl::Seconds(2));
  EXPECT_DOUBLE_EQ(JobTasksPerSecond(job, 3'000'000), 617);
}

TEST(JobListTest, AFinishedJobsTimeEndsWithItsLastResult) {
  v1::JobInfo job = RunningJob();
  job.set_state(v1::JOB_STATE_DONE);
  job.set_ok(10'000);
  job.set_failed(0);
  job.set_running(0);
  job.set_queued(0);
  job.set_finished_us(5'000'000);
  EXPECT_EQ(JobWallTime(job, 99'000'000), absl::Seconds(4));
  EXPECT_DOUBLE_EQ(JobTasksPerSecond(job, 99'000'000), 2'500);
  // No time at all: no rate rather than a division by zero.
  job.set_finished_us(job.created_us());
  EXPECT_EQ(JobTasksPerSecond(job, 99'000'000), 0);
}

TEST(JobListTest, ARowHasEveryColumnUnderItsHeader) {
  const std::string header = JobTableHeader();
  const std::string row = FormatJobRow(RunningJob(), 3'000'000);
  EXPECT_THAT(header, StartsWith("   JOB  STATE"));
  EXPECT_EQ(row,
            "    12  running      10,000     1,200      34      0          0 "
            "  8,670       96       617    2.0s    2.0s  ipv4:10.0.0.7");
  // Columns line up: the client starts where its header does.
  EXPECT_EQ(row.find("ipv4"), header.find("CLIENT"));
  v1::JobInfo unknown = RunningJob();
  unknown.clear_client();
  EXPECT_THAT(FormatJobRow(unknown, 3'000'000), testing::EndsWith("  -"));
  // A certificate's name cannot move the cursor or ring a bell.
  v1::JobInfo odd = RunningJob();
  odd.set_client("cn:a\x1b[2J\a");
  EXPECT_THAT(FormatJobRow(odd, 3'000'000), testing::EndsWith("  cn:a?[2J?"));
}

TEST(JobListTest, JsonHasTheDocumentedFieldsInOrder) {
  EXPECT_EQ(FormatJobJson(RunningJob(), 3'000'000),
            "{\"job_id\":12,\"state\":\"running\",\"client\":"
            "\"ipv4:10.0.0.7\",\"total\":10000,\"queued\":8670,\"running\":96,"
            "\"ok\":1200,\"failed\":34,\"timed_out\":0,\"cancelled\":0,"
            "\"created_us\":1000000,\"finished_us\":0,\"wall_s\":2.000000,"
            "\"tasks_per_s\":617.0,\"age_s\":2.000000}");
}

}  // namespace
}  // namespace qfarm::client
