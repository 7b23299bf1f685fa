// Finished jobs whose results leave memory (StoreFinished()): only once
// readable and not held, summarized in the journal once, answered from the
// summary, loaded back (in journal order) for their results, and restored
// from a summary after a restart.
#include "coordinator/scheduler_test_util.h"

namespace qfarm::coordinator {
namespace {

std::vector<std::string> Values(const std::vector<v1::TaskResult>& results) {
  std::vector<std::string> out;
  for (const v1::TaskResult& r : results) {
    out.push_back(absl::StrCat(r.index(), "=", r.value()));
  }
  return out;
}

class StoredTest : public SchedulerTest {
 protected:
  StoredTest() : SchedulerTest({.retain_finished = absl::Hours(1)}) {
    journal_.StoreResults(true);
    scheduler_.SetJournal(&journal_, nullptr);
  }

  // A job of `n` echo tasks run to OK on a new worker, in two appends (the
  // second half first), both made durable.
  JobId RunJob(uint32_t n) {
    const JobId job = Submit(Echoes(n));
    WorkerKey w = Worker(absl::StrCat("w", job), n);
    std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
    EXPECT_THAT(got, SizeIs(n));
    std::vector<v1::TaskResult> results = ResultsFor(got);
    const size_t half = n / 2;
    scheduler_.RecordResults(
        w, std::vector<v1::TaskResult>(results.begin() + half, results.end()));
    scheduler_.RecordResults(w, std::vector<v1::TaskResult>(
                                    results.begin(), results.begin() + half));
    while (completed_ < journal_.size()) journal_.Complete(completed_++);
    scheduler_.RemoveWorker(w);
    return job;
  }

  SchedulerStats Stats() { return scheduler_.Stats(); }

  FakeJournal journal_;
  size_t completed_ = 0;
};

TEST_F(StoredTest, FinishedJobLeavesMemoryAndComesBackWhole) {
  const JobId job = RunJob(4);
  const v1::JobInfo before = Job(job);
  const std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(4));

  EXPECT_EQ(scheduler_.StoreFinished(), 1u);
  EXPECT_EQ(Stats().stored_jobs, 1u);
  EXPECT_EQ(Stats().finished_jobs, 1u);
  // One summary, equal to what GetJob says, before and after.
  std::vector<v1::StoredJob> stored = journal_.stored();
  ASSERT_THAT(stored, SizeIs(1));
  EXPECT_EQ(stored[0].info().SerializeAsString(), before.SerializeAsString());
  EXPECT_GT(stored[0].result_bytes(), 0u);
  EXPECT_EQ(Job(job).SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(scheduler_.ListJobs(v1::JOB_STATE_DONE, 0, 10, 10).jobs.size(), 1u);
  EXPECT_EQ(journal_.loads(), 0);

  // Reading loads it back, in the journal's order (here, the order recorded).
  absl::StatusOr<ResultsView> view = scheduler_.ViewResults(job, 0, 100);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_TRUE(view->journal_order);
  EXPECT_TRUE(view->finished);
  EXPECT_EQ(journal_.loads(), 1);
  EXPECT_EQ(Values(AllResults(job)), Values(results));
  EXPECT_EQ(Stats().stored_jobs, 0u);
  EXPECT_EQ(*scheduler_.GetTaskState(job, 3), v1::TASK_STATE_OK);
  EXPECT_EQ(scheduler_.GetTaskState(job, 4).status().code(),
            absl::StatusCode::kInvalidArgument);

  // Stored again, it is not summarized twice.
  EXPECT_EQ(scheduler_.StoreFinished(), 1u);
  EXPECT_THAT(journal_.stored(), SizeIs(1));
  EXPECT_EQ(*scheduler_.GetTaskState(job, 0), v1::TASK_STATE_OK);
  EXPECT_EQ(journal_.loads(), 2);
}

TEST_F(StoredTest, HeldRunningAndUnreadableJobsStayInMemory) {
  const JobId held = RunJob(2);
  ASSERT_TRUE(scheduler_.HoldJob(held));
  // Finished, but its result is not durable yet; and running, one task of
  // two with its result.
  const JobId unreadable = Submit(Echoes(1));
  const JobId running = Submit(Echoes(2));
  WorkerKey w = Worker("wr", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(Ids(got), ElementsAre(absl::StrCat(unreadable, ":0@1"),
                                    absl::StrCat(running, ":0@1")));
  scheduler_.RecordResults(w, ResultsFor(got));

  EXPECT_EQ(scheduler_.StoreFinished(), 0u);
  EXPECT_THAT(journal_.stored(), IsEmpty());
  scheduler_.UnholdJob(held);
  while (completed_ < journal_.size()) journal_.Complete(completed_++);
  EXPECT_EQ(scheduler_.StoreFinished(), 2u);  // held and unreadable
  std::vector<JobId> stored;
  for (const v1::StoredJob& s : journal_.stored()) {
    stored.push_back(s.info().job_id());
  }
  EXPECT_THAT(stored, ::testing::UnorderedElementsAre(held, unreadable));
  EXPECT_EQ(Job(running).state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(journal_.loads(), 0);
}

TEST_F(StoredTest, JournalThatDoesNotStoreKeepsEverything) {
  journal_.StoreResults(false);
  const JobId job = RunJob(2);
  EXPECT_EQ(scheduler_.StoreFinished(), 0u);
  EXPECT_THAT(AllResults(job), SizeIs(2));
  EXPECT_EQ(journal_.loads(), 0);
}

TEST_F(StoredTest, LoadThatFailsIsReportedAndLeavesTheJobStored) {
  const JobId job = RunJob(2);
  ASSERT_EQ(scheduler_.StoreFinished(), 1u);
  journal_.FailLoads(absl::DataLossError("row 9 fails its checksum"));
  absl::Status status = scheduler_.ReadResults(job, 0, 10).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(status.message(),
            absl::StrCat("job ", job,
                         "'s results cannot be read back from the journal: "
                         "row 9 fails its checksum"));
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(Stats().stored_jobs, 1u);
  journal_.FailLoads(absl::OkStatus());
  EXPECT_THAT(AllResults(job), SizeIs(2));
}

TEST_F(StoredTest, ResultsThatDisagreeWithTheSummaryAreDataLoss) {
  // A summary of two tasks, and no results in the journal for them.
  RecoveredState state;
  v1::StoredJob summary;
  summary.mutable_info()->set_job_id(5);
  summary.mutable_info()->set_state(v1::JOB_STATE_DONE);
  summary.mutable_info()->set_total(2);
  summary.mutable_info()->set_ok(2);
  state.jobs.push_back({.id = 5, .stored = summary});
  ASSERT_TRUE(scheduler_.Restore(std::move(state)).ok());
  absl::Status status = scheduler_.ReadResults(5, 0, 10).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(),
              HasSubstr("job 5's results in the journal: 0 results for 2 "
                        "tasks"));
}

TEST_F(StoredTest, RestoredFromASummaryWithoutItsResults) {
  RecoveredState state;
  v1::StoredJob summary;
  v1::JobInfo& info = *summary.mutable_info();
  info.set_job_id(3);
  info.set_state(v1::JOB_STATE_FAILED);
  info.set_total(3);
  info.set_ok(2);
  info.set_failed(1);
  info.set_created_us(kStartUs - 10);
  info.set_finished_us(kStartUs - 5);
  info.set_client("ipv4:10.0.0.7");
  summary.set_result_bytes(300);
  state.jobs.push_back(
      {.id = 3, .created_us = kStartUs - 10, .stored = summary});
  ASSERT_TRUE(scheduler_.Restore(std::move(state)).ok());
  EXPECT_EQ(Job(3).SerializeAsString(), info.SerializeAsString());
  EXPECT_EQ(Stats().stored_jobs, 1u);
  EXPECT_EQ(Submit(Echoes(1)), 4u);
  // Retention counts it: released by age like any finished job.
  clock_.Advance(absl::Hours(1));
  std::vector<ReleasedJob> released = scheduler_.ReleaseFinished();
  ASSERT_THAT(released, SizeIs(1));
  EXPECT_EQ(released[0].id, 3u);
  EXPECT_EQ(released[0].finished_us, kStartUs - 5);
  EXPECT_EQ(Stats().stored_jobs, 0u);
  EXPECT_EQ(scheduler_.ReadResults(3, 0, 10).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(journal_.loads(), 0);
}

TEST_F(StoredTest, SummaryOfAnUnfinishedJobIsRefused) {
  RecoveredState state;
  v1::StoredJob summary;
  summary.mutable_info()->set_job_id(3);
  summary.mutable_info()->set_state(v1::JOB_STATE_DONE);
  summary.mutable_info()->set_total(3);
  summary.mutable_info()->set_ok(2);
  state.jobs.push_back({.id = 3, .stored = summary});
  absl::Status status = scheduler_.Restore(std::move(state));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("recovered job 3: its summary is not of a finished "
                        "job"));
}

TEST_F(StoredTest, LateResultForAStoredJobIsDroppedQuietly) {
  const JobId job = Submit(Echoes(2));
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(2));
  ASSERT_TRUE(scheduler_.CancelJob(job).ok());
  while (completed_ < journal_.size()) journal_.Complete(completed_++);
  ASSERT_EQ(scheduler_.StoreFinished(), 1u);
  std::string violation;
  EXPECT_THAT(scheduler_.RecordResults(w, ResultsFor(got), &violation),
              IsEmpty());
  EXPECT_EQ(violation, "");
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(Values(AllResults(job)),
              ::testing::UnorderedElementsAre("0=", "1="));
}

}  // namespace
}  // namespace qfarm::coordinator
