// The Scheduler: lost and silent workers, retries and their backoff.
#include "coordinator/scheduler_test_util.h"

namespace qfarm::coordinator {
namespace {

// --- Worker loss ------------------------------------------------------------

TEST_F(SchedulerTest, LostTasksGoBackToTheFrontWithTheNextAttempt) {
  JobId job = Submit(Echoes(5));
  WorkerKey w1 = Worker("w1", 2);
  std::vector<v1::Assignment> first = Flatten(scheduler_.TakeDispatches());
  EXPECT_THAT(Ids(first), ElementsAre(absl::StrCat(job, ":0@1"),
                                      absl::StrCat(job, ":1@1")));
  EXPECT_EQ(scheduler_.queued(), 3u);

  EXPECT_THAT(scheduler_.RemoveWorker(w1), IsEmpty());
  EXPECT_EQ(scheduler_.queued(), 5u);
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.queued(), 5u);
  EXPECT_EQ(info.running(), 0u);

  clock_.Advance(absl::Seconds(1));
  WorkerKey w2 = Worker("w2", 3);
  std::vector<v1::Assignment> second = Flatten(scheduler_.TakeDispatches());
  EXPECT_THAT(Ids(second),
              ElementsAre(absl::StrCat(job, ":0@2"), absl::StrCat(job, ":1@2"),
                          absl::StrCat(job, ":2@1")));
  // The lost worker's late result is dropped even if it reconnected.
  EXPECT_THAT(scheduler_.RecordResults(w1, ResultsFor(first)), IsEmpty());
  // Neither is a result with the old attempt from the new worker.
  EXPECT_THAT(scheduler_.RecordResults(w2, ResultsFor(first)), IsEmpty());
  EXPECT_THAT(scheduler_.RecordResults(w2, ResultsFor(second)),
              ElementsAre(job));
  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(3));
  EXPECT_EQ(results[0].attempt(), 2u);
  EXPECT_EQ(results[0].queued_us(), kStartUs);
  EXPECT_EQ(results[0].dispatched_us(), kStartUs + 1'000'000);
}

TEST_F(SchedulerTest, LostTasksKeepTheirOrderAheadOfOtherJobs) {
  JobId a = Submit(Echoes(2));
  JobId b = Submit(Echoes(2));
  WorkerKey w1 = Worker("w1", 3);
  EXPECT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(3));  // a0 a1 b0
  scheduler_.RemoveWorker(w1);
  clock_.Advance(absl::Milliseconds(100));  // The first retry's backoff.
  Worker("w2", 10);
  EXPECT_THAT(Ids(Flatten(scheduler_.TakeDispatches())),
              ElementsAre(absl::StrCat(a, ":0@2"), absl::StrCat(a, ":1@2"),
                          absl::StrCat(b, ":0@2"), absl::StrCat(b, ":1@1")));
}

TEST_F(SchedulerTest, TaskFailsAfterItsAttemptsAreUsed) {
  JobId job = Submit(Echoes(1));
  for (uint32_t attempt = 1; attempt <= 2; ++attempt) {
    WorkerKey w = Worker(absl::StrCat("w", attempt), 1);
    std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
    ASSERT_THAT(got, SizeIs(1));
    EXPECT_EQ(got[0].attempt(), attempt);
    EXPECT_THAT(scheduler_.RemoveWorker(w), IsEmpty());
    EXPECT_EQ(scheduler_.queued(), 1u);
    clock_.Advance(absl::Seconds(1));  // Past the backoff.
  }
  WorkerKey w3 = Worker("w3", 1);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].attempt(), 3u);
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(scheduler_.RemoveWorker(w3), ElementsAre(job));
  EXPECT_EQ(scheduler_.queued(), 0u);

  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_EQ(results[0].state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(results[0].attempt(), 3u);
  EXPECT_EQ(results[0].worker(), "w3");
  EXPECT_EQ(results[0].error(),
            "worker lost while running the task 3 times (attempt 3 of 3); "
            "last worker: w3 (connection ended)");
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(info.failed(), 1u);
  EXPECT_EQ(info.finished_us(), kStartUs + 4'000'000);
}

TEST_F(SchedulerTest, TaskMaxAttemptsOverridesTheDefault) {
  std::vector<v1::Task> tasks = Echoes(2);
  tasks[0].set_max_attempts(1);
  JobId job = Submit(std::move(tasks));
  WorkerKey w = Worker("w1", 2);
  EXPECT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(2));
  EXPECT_THAT(scheduler_.RemoveWorker(w), ElementsAre(job));
  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_EQ(results[0].index(), 0u);
  EXPECT_EQ(results[0].error(),
            "worker lost while running the task 1 time (attempt 1 of 1); "
            "last worker: w1 (connection ended)");
  EXPECT_EQ(scheduler_.queued(), 1u);
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(info.failed(), 1u);
  EXPECT_EQ(info.queued(), 1u);
}

TEST_F(SchedulerTest, CreditsOfARemovedWorkerVanish) {
  Submit(Echoes(10));
  WorkerKey w1 = Worker("w1", 5);
  scheduler_.RemoveWorker(w1);
  WorkerKey w2 = Worker("w2", 2);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  EXPECT_THAT(For(d, w1), IsEmpty());
  EXPECT_THAT(For(d, w2), SizeIs(2));
  EXPECT_THAT(scheduler_.RemoveWorker(12345), IsEmpty());  // Unknown: ignored.
  EXPECT_THAT(scheduler_.ListWorkers(), SizeIs(1));
}

TEST_F(SchedulerTest, FinishedTasksAreNotRequeuedOnWorkerLoss) {
  JobId job = Submit(Echoes(2));
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  scheduler_.RecordResults(w, {ResultFor(got[0])});
  scheduler_.RemoveWorker(w);
  EXPECT_EQ(scheduler_.queued(), 1u);
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.ok(), 1u);
  EXPECT_EQ(info.queued(), 1u);
}

// --- Retry backoff ----------------------------------------------------------

TEST_F(SchedulerTest, LostTaskWaitsOutItsBackoffWhileOthersGo) {
  JobId job = Submit(Echoes(3));
  WorkerKey w1 = Worker("w1", 1);
  EXPECT_THAT(Ids(Flatten(scheduler_.TakeDispatches())),
              ElementsAre(absl::StrCat(job, ":0@1")));
  EXPECT_EQ(scheduler_.NextWakeup(), absl::InfiniteFuture());
  scheduler_.RemoveWorker(w1);
  EXPECT_EQ(scheduler_.queued(), 3u);
  EXPECT_EQ(Job(job).queued(), 3u);
  EXPECT_EQ(scheduler_.GetTaskState(job, 0).value_or(v1::TASK_STATE_OK),
            v1::TASK_STATE_QUEUED);
  EXPECT_EQ(scheduler_.NextWakeup(),
            absl::FromUnixMicros(kStartUs) + absl::Milliseconds(100));

  // The others are not held up by it.
  WorkerKey w2 = Worker("w2", 10);
  EXPECT_THAT(
      Ids(Flatten(scheduler_.TakeDispatches())),
      ElementsAre(absl::StrCat(job, ":1@1"), absl::StrCat(job, ":2@1")));
  EXPECT_EQ(scheduler_.queued(), 1u);

  clock_.Advance(absl::Milliseconds(100) - absl::Microseconds(1));
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  clock_.Advance(absl::Microseconds(1));
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(1));
  EXPECT_EQ(d[0].worker, w2);
  EXPECT_THAT(Ids(d[0].assignments), ElementsAre(absl::StrCat(job, ":0@2")));
  EXPECT_EQ(scheduler_.queued(), 0u);
  EXPECT_EQ(scheduler_.NextWakeup(), absl::InfiniteFuture());
}

TEST_F(SchedulerTest, DueTaskWaitsForCreditsAndThenGoesFirst) {
  JobId job = Submit(Echoes(2));
  WorkerKey w1 = Worker("w1", 1);
  scheduler_.TakeDispatches();
  scheduler_.RemoveWorker(w1);
  clock_.Advance(absl::Seconds(5));
  WorkerKey w2 = Worker("w2");
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());  // No credits yet.
  JobId later = Submit(Echoes(1));
  scheduler_.AddCredits(w2, 3);
  EXPECT_THAT(Ids(Flatten(scheduler_.TakeDispatches())),
              ElementsAre(absl::StrCat(job, ":0@2"), absl::StrCat(job, ":1@1"),
                          absl::StrCat(later, ":0@1")));
}

TEST_F(ShortBackoffCapTest, BackoffDoublesPerAttemptUpToTheMax) {
  JobId job = Submit({EchoWithAttempts("x", 10)});
  const int64_t expected_ms[] = {100, 200, 400, 500, 500, 500};
  for (uint32_t attempt = 1; attempt <= 6; ++attempt) {
    WorkerKey w = Worker(absl::StrCat("w", attempt), 1);
    std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
    ASSERT_THAT(got, SizeIs(1));
    EXPECT_EQ(got[0].attempt(), attempt);
    scheduler_.RemoveWorker(w);
    const absl::Duration wait = scheduler_.NextWakeup() - clock_.Now();
    EXPECT_EQ(wait, absl::Milliseconds(expected_ms[attempt - 1]))
        << "after attempt " << attempt;
    // Not a microsecond early.
    clock_.Advance(wait - absl::Microseconds(1));
    WorkerKey next = Worker("probe", 1);
    EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
    scheduler_.RemoveWorker(next);
    clock_.Advance(absl::Microseconds(1));
  }
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_RUNNING);
}

TEST_F(NoBackoffTest, ZeroBackoffRequeuesAtOnce) {
  JobId job = Submit(Echoes(2));
  WorkerKey w1 = Worker("w1", 2);
  scheduler_.TakeDispatches();
  scheduler_.RemoveWorker(w1);
  EXPECT_EQ(scheduler_.NextWakeup(), absl::InfiniteFuture());
  Worker("w2", 2);
  EXPECT_THAT(
      Ids(Flatten(scheduler_.TakeDispatches())),
      ElementsAre(absl::StrCat(job, ":0@2"), absl::StrCat(job, ":1@2")));
}

TEST_F(SchedulerTest, RetriesGoInTheOrderTheirBackoffEnded) {
  JobId job = Submit(Echoes(4));
  WorkerKey w1 = Worker("w1", 1);  // Takes 0.
  WorkerKey w2 = Worker("w2", 0);
  scheduler_.TakeDispatches();
  scheduler_.AddCredits(w2, 1);  // Takes 1.
  scheduler_.TakeDispatches();
  scheduler_.RemoveWorker(w2);  // 1 is due at +100 ms.
  clock_.Advance(absl::Milliseconds(50));
  scheduler_.RemoveWorker(w1);  // 0 is due at +150 ms.
  EXPECT_EQ(scheduler_.NextWakeup(),
            absl::FromUnixMicros(kStartUs) + absl::Milliseconds(100));
  clock_.Advance(absl::Milliseconds(100));
  Worker("w3", 10);
  EXPECT_THAT(
      Ids(Flatten(scheduler_.TakeDispatches())),
      ElementsAre(absl::StrCat(job, ":1@2"), absl::StrCat(job, ":0@2"),
                  absl::StrCat(job, ":2@1"), absl::StrCat(job, ":3@1")));
}

TEST_F(SchedulerTest, CancelledWhileWaitingOutTheBackoff) {
  JobId job = Submit(Echoes(2));
  JobId other = Submit(Echoes(1));
  WorkerKey w1 = Worker("w1", 2);
  scheduler_.TakeDispatches();
  scheduler_.RemoveWorker(w1);
  EXPECT_EQ(scheduler_.queued(), 3u);
  absl::StatusOr<CancelOutcome> outcome = scheduler_.CancelJob(job);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->cancelled, 2u);
  EXPECT_THAT(outcome->workers_to_notify, IsEmpty());
  EXPECT_EQ(scheduler_.queued(), 1u);
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_CANCELLED);
  clock_.Advance(absl::Seconds(1));
  Worker("w2", 10);
  EXPECT_THAT(Ids(Flatten(scheduler_.TakeDispatches())),
              ElementsAre(absl::StrCat(other, ":0@1")));
  EXPECT_EQ(scheduler_.queued(), 0u);
  EXPECT_EQ(scheduler_.NextWakeup(), absl::InfiniteFuture());
  EXPECT_THAT(AllResults(job), SizeIs(2));
}

// A hundred thousand lost tasks come back in order; each TakeDispatches()
// only touches what is due (no quadratic scan of the waiting tasks).
TEST_F(SchedulerTest, ManyDelayedTasksComeBackInOrder) {
  constexpr size_t kTasks = 100'000;
  JobId job = Submit(Echoes(kTasks));
  WorkerKey w1 = Worker("w1", kTasks);
  EXPECT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(kTasks));
  scheduler_.RemoveWorker(w1);
  WorkerKey w2 = Worker("w2", kTasks);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  }
  clock_.Advance(absl::Milliseconds(100));
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(kTasks));
  for (uint32_t i = 0; i < kTasks; ++i) {
    ASSERT_EQ(got[i].index(), i);
    ASSERT_EQ(got[i].attempt(), 2u);
  }
  scheduler_.RecordResults(w2, ResultsFor(got));
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);
}

// --- Liveness ---------------------------------------------------------------

TEST_F(SchedulerTest, SilentWorkerIsDeclaredDeadAfterTheTimeout) {
  JobId job = Submit(Echoes(2));
  WorkerKey w1 = Worker("w1", 2);
  std::vector<v1::Assignment> first = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(first, SizeIs(2));

  clock_.Advance(absl::Seconds(10));  // Exactly the timeout: still alive.
  Expiry expiry = scheduler_.ExpireSilentWorkers();
  EXPECT_THAT(expiry.workers, IsEmpty());
  EXPECT_THAT(scheduler_.ListWorkers(), SizeIs(1));

  clock_.Advance(absl::Microseconds(1));
  expiry = scheduler_.ExpireSilentWorkers();
  EXPECT_THAT(expiry.workers, ElementsAre(w1));
  EXPECT_THAT(expiry.jobs, IsEmpty());  // Requeued, nothing failed.
  EXPECT_THAT(scheduler_.ListWorkers(), IsEmpty());
  EXPECT_EQ(scheduler_.queued(), 2u);
  EXPECT_FALSE(scheduler_.Heartbeat(w1));
  // Declared once.
  EXPECT_THAT(scheduler_.ExpireSilentWorkers().workers, IsEmpty());

  clock_.Advance(absl::Milliseconds(100));
  WorkerKey w2 = Worker("w2", 2);
  std::vector<v1::Assignment> second = Flatten(scheduler_.TakeDispatches());
  EXPECT_THAT(Ids(second), ElementsAre(absl::StrCat(job, ":0@2"),
                                       absl::StrCat(job, ":1@2")));
  // The frozen worker wakes up and reports: dropped, before and after the
  // re-run reports, and so are duplicates of the re-run's results.
  EXPECT_THAT(scheduler_.RecordResults(w1, ResultsFor(first)), IsEmpty());
  EXPECT_THAT(scheduler_.RecordResults(w2, ResultsFor(second)),
              ElementsAre(job));
  EXPECT_THAT(scheduler_.RecordResults(w1, ResultsFor(first)), IsEmpty());
  EXPECT_THAT(scheduler_.RecordResults(w2, ResultsFor(second)), IsEmpty());
  scheduler_.AddCredits(w1, 5);  // Ignored.
  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(2));
  EXPECT_EQ(results[0].attempt(), 2u);
  EXPECT_EQ(results[0].worker(), "w2");
  EXPECT_EQ(results[1].attempt(), 2u);
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);
  std::vector<v1::WorkerInfo> workers = scheduler_.ListWorkers();
  ASSERT_THAT(workers, SizeIs(1));
  EXPECT_EQ(workers[0].worker_id(), "w2");
  EXPECT_EQ(workers[0].completed(), 2u);
}

TEST_F(SchedulerTest, AnyMessageCountsAsHeard) {
  WorkerKey beats = Worker("beats");
  WorkerKey grants = Worker("grants");
  WorkerKey reports = Worker("reports");
  WorkerKey quiet = Worker("quiet");
  clock_.Advance(absl::Seconds(6));
  EXPECT_TRUE(scheduler_.Heartbeat(beats));
  scheduler_.AddCredits(grants, 1);
  scheduler_.RecordResults(reports, {});  // Even an empty batch.
  clock_.Advance(absl::Seconds(6));
  EXPECT_THAT(scheduler_.ExpireSilentWorkers().workers, ElementsAre(quiet));
  clock_.Advance(absl::Seconds(4));  // 10 s since they were heard.
  EXPECT_THAT(scheduler_.ExpireSilentWorkers().workers, IsEmpty());
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(scheduler_.ExpireSilentWorkers().workers,
              ElementsAre(beats, grants, reports));
  EXPECT_THAT(scheduler_.ListWorkers(), IsEmpty());
}

TEST_F(SchedulerTest, HeartbeatsKeepABusyWorkerAlive) {
  JobId job = Submit(Echoes(1));
  WorkerKey w = Worker("w1", 1);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  for (int i = 0; i < 100; ++i) {
    clock_.Advance(absl::Seconds(3));
    EXPECT_TRUE(scheduler_.Heartbeat(w));
    EXPECT_THAT(scheduler_.ExpireSilentWorkers().workers, IsEmpty());
  }
  EXPECT_THAT(scheduler_.RecordResults(w, ResultsFor(got)), ElementsAre(job));
}

TEST_F(SchedulerTest, PoisonTaskFailsAfterItsAttemptsThroughExpiry) {
  JobId job = Submit({EchoWithAttempts("poison", 2), Echo("fine")});
  WorkerKey w1 = Worker("w1", 1);
  ASSERT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(1));  // poison@1
  clock_.Advance(absl::Seconds(11));
  Worker("w2", 0);  // Heard just now; w1 has been silent 11 s.
  Expiry expiry = scheduler_.ExpireSilentWorkers();
  EXPECT_THAT(expiry.workers, ElementsAre(w1));
  EXPECT_THAT(expiry.jobs, IsEmpty());

  clock_.Advance(absl::Milliseconds(100));
  WorkerKey w3 = Worker("w3", 1);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  EXPECT_THAT(Ids(got), ElementsAre(absl::StrCat(job, ":0@2")));
  clock_.Advance(absl::Seconds(10) + absl::Microseconds(500));
  expiry = scheduler_.ExpireSilentWorkers();
  // w2 has been silent for longer too.
  EXPECT_THAT(expiry.workers, UnorderedElementsAre(w3, WorkerKey{2}));
  EXPECT_THAT(expiry.jobs, ElementsAre(job));

  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_EQ(results[0].index(), 0u);
  EXPECT_EQ(results[0].state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(results[0].attempt(), 2u);
  EXPECT_EQ(results[0].worker(), "w3");
  EXPECT_EQ(results[0].error(),
            "worker lost while running the task 2 times (attempt 2 of 2); "
            "last worker: w3 (silent for 10.0005s)");
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_RUNNING);  // "fine" is still queued.
  EXPECT_EQ(info.failed(), 1u);
  EXPECT_EQ(info.queued(), 1u);
  EXPECT_EQ(scheduler_.NextWakeup(), absl::InfiniteFuture());
  // The late result of the last attempt is dropped.
  EXPECT_THAT(scheduler_.RecordResults(w3, ResultsFor(got)), IsEmpty());
  EXPECT_THAT(AllResults(job), SizeIs(1));
}

TEST_F(NoExpiryTest, InfiniteTimeoutNeverExpires) {
  Worker("w1");
  clock_.Advance(absl::Hours(24 * 365));
  EXPECT_THAT(scheduler_.ExpireSilentWorkers().workers, IsEmpty());
  EXPECT_THAT(scheduler_.ListWorkers(), SizeIs(1));
}

TEST_F(SchedulerTest, UnnamedWorkerIsNamedAfterItsKey) {
  JobId job = Submit({EchoWithAttempts("x", 1)});
  WorkerKey w =
      scheduler_.AddWorker({.mode = "thread", .slots = 1, .kinds = {"echo"}});
  scheduler_.AddCredits(w, 1);
  scheduler_.TakeDispatches();
  std::vector<v1::WorkerInfo> workers = scheduler_.ListWorkers();
  ASSERT_THAT(workers, SizeIs(1));
  EXPECT_EQ(workers[0].worker_id(), absl::StrCat("worker-", w));
  scheduler_.RemoveWorker(w);
  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_THAT(results[0].error(),
              HasSubstr(absl::StrCat("last worker: worker-", w, " (")));
}

}  // namespace
}  // namespace qfarm::coordinator
