#include "coordinator/job_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

std::vector<v1::Task> Echoes(int n) {
  std::vector<v1::Task> tasks(static_cast<size_t>(n));
  for (v1::Task& t : tasks) t.set_kind("echo");
  return tasks;
}

std::unique_ptr<v1::TaskResult> Result(v1::TaskState state) {
  auto r = std::make_unique<v1::TaskResult>();
  r->set_state(state);
  return r;
}

TEST(JobTest, CountersFollowTheTasks) {
  std::unique_ptr<Job> job = Job::Create(4, 100, Echoes(3));
  EXPECT_EQ(job->queued, 3u);
  job->Start(0, /*worker=*/7, 200);
  job->Start(1, 7, 200);
  EXPECT_EQ(job->queued, 1u);
  EXPECT_EQ(job->running, 2u);
  EXPECT_EQ(job->entries[0].attempt, 1u);
  EXPECT_EQ(job->entries[0].dispatched_us, 200);
  job->Requeue(1, /*delayed=*/true);
  EXPECT_TRUE(job->entries[1].delayed);
  EXPECT_EQ(job->queued, 2u);
  EXPECT_EQ(job->running, 1u);
  job->Finish(0, Result(v1::TASK_STATE_OK), 300);
  job->Finish(1, Result(v1::TASK_STATE_CANCELLED), 300);
  EXPECT_EQ(job->Info().state(), v1::JOB_STATE_RUNNING);
  job->Finish(2, Result(v1::TASK_STATE_FAILED), 400);
  v1::JobInfo info = job->Info();
  EXPECT_EQ(info.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(info.ok(), 1u);
  EXPECT_EQ(info.cancelled(), 1u);
  EXPECT_EQ(info.failed(), 1u);
  EXPECT_EQ(info.queued() + info.running(), 0u);
  EXPECT_EQ(info.finished_us(), 400);
  EXPECT_EQ(job->results[0]->queued_us(), 100);
  EXPECT_EQ(job->results[1]->index(), 1u);
}

TEST(JobTest, UnreadableResultsWaitForTheirTicket) {
  std::unique_ptr<Job> job = Job::Create(1, 0, Echoes(2));
  job->Finish(0, Result(v1::TASK_STATE_OK), 1);
  job->unreadable.emplace_back(5, 0);
  job->Finish(1, Result(v1::TASK_STATE_OK), 2);
  EXPECT_EQ(job->readable(), 0u);
  EXPECT_EQ(job->Info().state(), v1::JOB_STATE_RUNNING);
  job->ReleaseUpTo(4);
  EXPECT_EQ(job->readable(), 0u);
  job->ReleaseUpTo(5);
  EXPECT_EQ(job->readable(), 2u);
  EXPECT_EQ(job->Info().state(), v1::JOB_STATE_DONE);
}

TEST(JobTableTest, KeepsIdsInOrderWhateverOrderJobsComeIn) {
  JobTable table;
  // A journal's recovery may add jobs in any order.
  for (JobId id : {5, 2, 9, 3}) table.Add(Job::Create(id, 0, {v1::Task()}));
  table.Add(Job::Create(table.NextId(), 0, {v1::Task()}));
  EXPECT_THAT(table.ids(), ::testing::ElementsAre(1, 2, 3, 5, 9));
  // The same id twice keeps the first job and one entry.
  table.Add(Job::Create(5, 77, {v1::Task()}));
  EXPECT_THAT(table.ids(), ::testing::ElementsAre(1, 2, 3, 5, 9));
  EXPECT_EQ(table.Find(5)->created_us, 0);
}

TEST(RestoreJobTest, RefusesWhatCannotBe) {
  RecoveredJob bad{.id = 3, .tasks = Echoes(1)};
  bad.results.emplace_back().set_index(1);
  EXPECT_THAT(RestoreJob(bad, 0).status().message(),
              testing::HasSubstr("past its 1 tasks"));
  RecoveredJob not_final{.id = 3, .tasks = Echoes(1)};
  not_final.results.emplace_back().set_state(v1::TASK_STATE_RUNNING);
  EXPECT_THAT(RestoreJob(not_final, 0).status().message(),
              testing::HasSubstr("not final"));
  EXPECT_FALSE(RestoreJob(RecoveredJob{.id = 3}, 0).ok());
}

TEST(RestoreJobTest, CancelledJobCancelsTheRest) {
  RecoveredJob recovered{
      .id = 3, .created_us = 10, .cancelled = true, .tasks = Echoes(2)};
  v1::TaskResult& done = recovered.results.emplace_back();
  done.set_index(1);
  done.set_state(v1::TASK_STATE_OK);
  done.set_finished_us(20);
  absl::StatusOr<std::unique_ptr<Job>> job = RestoreJob(recovered, 99);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ((*job)->Info().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ((*job)->results[1]->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ((*job)->finished_us, 99);
}

}  // namespace
}  // namespace qfarm::coordinator
