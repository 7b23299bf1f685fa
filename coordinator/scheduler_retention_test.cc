// Retention: finished jobs released by age and by bytes, never while
// running or held, remembered as released; attempts journaled and restored.
#include "coordinator/scheduler_test_util.h"

namespace qfarm::coordinator {
namespace {

using ::testing::Pair;

class RetentionTest : public SchedulerTest {
 protected:
  explicit RetentionTest(
      SchedulerOptions options = {.retain_finished = absl::Hours(1)})
      : SchedulerTest(std::move(options)) {}

  // Runs every task of `job` to OK on worker `w`.
  void RunAll(WorkerKey w, size_t tasks) {
    scheduler_.AddCredits(w, static_cast<uint32_t>(tasks));
    std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
    ASSERT_THAT(got, SizeIs(tasks));
    scheduler_.RecordResults(w, ResultsFor(got));
  }

  std::vector<JobId> Released() {
    std::vector<JobId> ids;
    for (const ReleasedJob& job : scheduler_.ReleaseFinished()) {
      ids.push_back(job.id);
    }
    return ids;
  }
};

TEST_F(RetentionTest, FinishedJobIsReleasedOnceItsTimeIsUp) {
  WorkerKey w = Worker("w1");
  const JobId job = Submit(Echoes(2));
  RunAll(w, 2);
  const int64_t finished_us = Job(job).finished_us();
  ASSERT_NE(finished_us, 0);

  clock_.Advance(absl::Minutes(59));
  EXPECT_THAT(Released(), IsEmpty());
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);

  clock_.Advance(absl::Minutes(1));
  std::vector<ReleasedJob> released = scheduler_.ReleaseFinished();
  ASSERT_THAT(released, SizeIs(1));
  EXPECT_EQ(released[0].id, job);
  EXPECT_EQ(released[0].finished_us, finished_us);
  EXPECT_EQ(released[0].setting, "--retain-finished=1h");

  // Every way of asking says it existed, when it finished, and why it went.
  const std::string finished_at =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(finished_us),
                       absl::UTCTimeZone());
  for (absl::Status status : {scheduler_.GetJob(job).status(),
                              scheduler_.ReadResults(job, 0, 10).status(),
                              scheduler_.CancelJob(job).status(),
                              scheduler_.GetTaskState(job, 0).status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(
        status.message(),
        absl::StrCat("job ", job, " not found: it finished at ", finished_at,
                     " and was released under the retention setting "
                     "--retain-finished=1h"));
  }
  // An id never issued keeps the plain message.
  EXPECT_EQ(scheduler_.GetJob(job + 1).status().message(),
            absl::StrCat("job ", job + 1, " not found"));
  // It leaves the list, and the next id is new.
  EXPECT_THAT(scheduler_.ListJobs(v1::JOB_STATE_UNSPECIFIED, 0, 10, 10).jobs,
              IsEmpty());
  EXPECT_EQ(Submit(Echoes(1)), job + 1);
}

TEST_F(RetentionTest, RunningJobIsNeverReleased) {
  WorkerKey w = Worker("w1", 1);
  const JobId job = Submit(Echoes(2));
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  scheduler_.RecordResults(w, ResultsFor(got));  // One of two.
  clock_.Advance(absl::Hours(10));
  EXPECT_THAT(Released(), IsEmpty());
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_RUNNING);
  EXPECT_THAT(AllResults(job), SizeIs(1));
}

TEST_F(RetentionTest, HeldJobWaitsUntilItsLastHolderLetsGo) {
  WorkerKey w = Worker("w1");
  const JobId job = Submit(Echoes(1));
  RunAll(w, 1);
  ASSERT_TRUE(scheduler_.HoldJob(job));
  ASSERT_TRUE(scheduler_.HoldJob(job));
  clock_.Advance(absl::Hours(2));
  EXPECT_THAT(Released(), IsEmpty());
  scheduler_.UnholdJob(job);
  EXPECT_THAT(Released(), IsEmpty());
  scheduler_.UnholdJob(job);
  EXPECT_THAT(Released(), ElementsAre(job));
  EXPECT_FALSE(scheduler_.HoldJob(job));
}

TEST_F(RetentionTest, JobSubmittedHeldIsKeptForItsSubmitter) {
  WorkerKey w = Worker("w1");
  absl::StatusOr<JobId> job =
      scheduler_.SubmitJob(Echoes(1), {}, nullptr, "c", /*hold=*/true);
  ASSERT_TRUE(job.ok());
  RunAll(w, 1);
  clock_.Advance(absl::Hours(2));
  EXPECT_THAT(Released(), IsEmpty());
  scheduler_.UnholdJob(*job);
  EXPECT_THAT(Released(), ElementsAre(*job));
}

// A cancelled job's queued tasks stay in the queue as stale entries until
// it is compacted; the job may be released before. Dispatching past them
// (and promoting a cancelled task whose backoff ends) must not need it.
TEST_F(RetentionTest, CancelledQueuedJobReleasedBeforeItsTasksLeaveTheQueue) {
  WorkerKey w1 = Worker("w1", 1);
  const JobId lost = Submit(Echoes(1));
  ASSERT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(1));
  scheduler_.RemoveWorker(w1);  // Its task waits out a backoff.
  const JobId cancelled = Submit(Echoes(100));
  const JobId kept = Submit(Echoes(2));
  ASSERT_TRUE(scheduler_.CancelJob(cancelled).ok());
  ASSERT_TRUE(scheduler_.CancelJob(lost).ok());
  clock_.Advance(absl::Hours(2));
  EXPECT_THAT(Released(), ElementsAre(lost, cancelled));
  WorkerKey w2 = Worker("w2", 10);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[0].job_id(), kept);
  EXPECT_EQ(got[1].job_id(), kept);
  scheduler_.RecordResults(w2, ResultsFor(got));
  EXPECT_EQ(Job(kept).state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(scheduler_.queued(), 0u);
}

class RetentionBytesTest : public RetentionTest {
 protected:
  RetentionBytesTest()
      : RetentionTest({.retain_finished_bytes = 3 * kJobBytes}) {}
  // What a finished job of one echo result of kValue bytes holds, about.
  static constexpr uint64_t kJobBytes = 10'000;
};

TEST_F(RetentionBytesTest, OldestFinishedGoFirstPastTheCap) {
  WorkerKey w = Worker("w1");
  std::vector<JobId> jobs;
  for (int i = 0; i < 5; ++i) {
    jobs.push_back(Submit({Echo(std::string(kJobBytes - 1000, 'x'))}));
    RunAll(w, 1);
    clock_.Advance(absl::Seconds(1));
  }
  // Five jobs of a bit under kJobBytes each; room for three.
  std::vector<ReleasedJob> released = scheduler_.ReleaseFinished();
  ASSERT_THAT(released, SizeIs(2));
  EXPECT_EQ(released[0].id, jobs[0]);
  EXPECT_EQ(released[1].id, jobs[1]);
  EXPECT_EQ(released[0].setting,
            absl::StrCat("--retain-finished-bytes=", 3 * kJobBytes));
  EXPECT_THAT(scheduler_.GetJob(jobs[0]).status().message(),
              HasSubstr("released under the retention setting "
                        "--retain-finished-bytes="));
  EXPECT_EQ(Job(jobs[2]).state(), v1::JOB_STATE_DONE);
  // No age limit: the rest stay.
  clock_.Advance(absl::Hours(1000));
  EXPECT_THAT(Released(), IsEmpty());
}

class JournaledRetentionTest : public RetentionTest {
 protected:
  JournaledRetentionTest()
      : RetentionTest({.retain_finished = absl::ZeroDuration()}) {
    scheduler_.SetJournal(&journal_, nullptr);
  }
  FakeJournal journal_;
};

TEST_F(JournaledRetentionTest, ReleasedOnlyOnceReadableAndJournaled) {
  WorkerKey w = Worker("w1");
  const JobId job = Submit(Echoes(1));
  RunAll(w, 1);
  // Finished, but its result is not durable yet.
  EXPECT_THAT(Released(), IsEmpty());
  journal_.Complete(0);
  EXPECT_THAT(Released(), ElementsAre(job));
  std::vector<ReleasedJob> journaled = journal_.released();
  ASSERT_THAT(journaled, SizeIs(1));
  EXPECT_EQ(journaled[0].id, job);
  EXPECT_EQ(journaled[0].setting, "--retain-finished=0");
}

TEST_F(JournaledRetentionTest, AttemptsOfALostWorkerAreJournaled) {
  WorkerKey w1 = Worker("w1", 2);
  const JobId job = Submit(Echoes(2));
  ASSERT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(2));
  scheduler_.RemoveWorker(w1);
  std::vector<v1::TaskResult> attempts = journal_.attempts();
  ASSERT_THAT(attempts, SizeIs(2));
  EXPECT_EQ(attempts[0].job_id(), job);
  EXPECT_EQ(attempts[0].index(), 0u);
  EXPECT_EQ(attempts[0].attempt(), 1u);
  EXPECT_EQ(attempts[1].index(), 1u);
}

TEST_F(RetentionTest, RestoredAttemptsCountAfterARestart) {
  // Task 0 lost its worker in attempt 1 of 2 before the restart: its next
  // attempt is its last, and losing that one fails it.
  RecoveredState state;
  RecoveredJob job{.id = 7, .created_us = kStartUs};
  job.tasks.push_back(EchoWithAttempts("a", 2));
  job.tasks.push_back(EchoWithAttempts("b", 2));
  job.attempts = {{0, 1}};
  state.jobs.push_back(std::move(job));
  ASSERT_TRUE(scheduler_.Restore(std::move(state)).ok());
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[0].attempt(), 2u);
  EXPECT_EQ(got[1].attempt(), 1u);
  scheduler_.RemoveWorker(w);
  std::vector<v1::TaskResult> results = AllResults(7);
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_EQ(results[0].index(), 0u);
  EXPECT_EQ(results[0].state(), v1::TASK_STATE_FAILED);
  EXPECT_THAT(results[0].error(), HasSubstr("attempt 2 of 2"));
}

TEST_F(RetentionTest, RestoredReleasedJobsStayReleased) {
  RecoveredState state;
  state.released.push_back(
      {.id = 41, .finished_us = kStartUs, .setting = "--retain-finished=5s"});
  ASSERT_TRUE(scheduler_.Restore(std::move(state)).ok());
  absl::Status status = scheduler_.GetJob(41).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(),
              HasSubstr("released under the retention setting "
                        "--retain-finished=5s"));
  // An older id the coordinator no longer has details of: still released.
  EXPECT_THAT(scheduler_.GetJob(40).status().message(),
              HasSubstr("it finished and was released"));
  EXPECT_EQ(Submit(Echoes(1)), 42u);
  EXPECT_EQ(scheduler_.GetJob(43).status().message(), "job 43 not found");
}

}  // namespace
}  // namespace qfarm::coordinator
