// The Scheduler: submitting jobs, dispatching them, recording results.
#include "coordinator/scheduler_test_util.h"

namespace qfarm::coordinator {
namespace {

// --- SubmitJob --------------------------------------------------------------

TEST_F(SchedulerTest, EmptyJobIsInvalid) {
  absl::StatusOr<JobId> job = scheduler_.SubmitJob({});
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(), "job has no tasks");
}

TEST_F(SchedulerTest, BadTaskNamesItsIndexAndNothingIsQueued) {
  std::vector<v1::Task> tasks = Echoes(5);
  tasks[3].set_kind("sleep");
  tasks[3].set_arg(-5);
  absl::StatusOr<JobId> job = scheduler_.SubmitJob(std::move(tasks));
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(), "task 3: sleep arg -5 ms is negative");
  EXPECT_EQ(scheduler_.queued(), 0u);
  EXPECT_EQ(scheduler_.GetJob(1).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, TaskIsCheckedAgainstTheLimits) {
  std::vector<v1::Task> tasks = Echoes(2);
  tasks[1].set_max_attempts(101);
  absl::StatusOr<JobId> job = scheduler_.SubmitJob(std::move(tasks));
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(job.status().message(), HasSubstr("task 1: max_attempts 101"));
}

TEST_F(SchedulerTest, JobIdsCountFromOne) {
  EXPECT_EQ(Submit(Echoes(1)), 1u);
  EXPECT_EQ(Submit(Echoes(2)), 2u);
  EXPECT_EQ(Submit(Echoes(3)), 3u);
  EXPECT_EQ(scheduler_.queued(), 6u);
}

TEST_F(SmallQueueTest, FullQueueRefusesWholeJobUntilTasksLeave) {
  Submit(Echoes(8));
  absl::StatusOr<JobId> refused = scheduler_.SubmitJob(Echoes(3));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().message(),
            "queue full: 8 of 10 tasks queued, job of 3 does not fit");
  // Nothing of the refused job was taken.
  EXPECT_EQ(scheduler_.queued(), 8u);
  EXPECT_EQ(scheduler_.GetJob(2).status().code(), absl::StatusCode::kNotFound);

  // Exactly full is fine.
  EXPECT_EQ(Submit(Echoes(2)), 2u);
  EXPECT_EQ(scheduler_.queued(), 10u);
  EXPECT_EQ(scheduler_.SubmitJob(Echoes(1)).status().code(),
            absl::StatusCode::kResourceExhausted);

  // Dispatched tasks leave the queue and make room.
  Worker("w1", 3);
  EXPECT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(3));
  EXPECT_EQ(scheduler_.queued(), 7u);
  EXPECT_EQ(Submit(Echoes(3)), 3u);
  EXPECT_EQ(scheduler_.queued(), 10u);
}

TEST_F(SmallQueueTest, JobLargerThanTheQueueIsRefused) {
  absl::StatusOr<JobId> job = scheduler_.SubmitJob(Echoes(11));
  EXPECT_EQ(job.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(job.status().message(),
            "job of 11 tasks is over the queue limit of 10 tasks");
}

TEST_F(SmallQueueTest, CancelFreesQueueRoomAtOnce) {
  JobId job = Submit(Echoes(10));
  EXPECT_EQ(scheduler_.SubmitJob(Echoes(1)).status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(scheduler_.CancelJob(job).ok());
  EXPECT_EQ(scheduler_.queued(), 0u);
  JobId next = Submit(Echoes(10));
  // The cancelled tasks are skipped; the next job's come out in order.
  WorkerKey w = Worker("w1", 3);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(1));
  EXPECT_EQ(d[0].worker, w);
  EXPECT_THAT(Ids(d[0].assignments), ElementsAre(absl::StrCat(next, ":0@1"),
                                                 absl::StrCat(next, ":1@1"),
                                                 absl::StrCat(next, ":2@1")));
  EXPECT_EQ(scheduler_.queued(), 7u);
}

// --- Dispatch ---------------------------------------------------------------

TEST_F(SchedulerTest, NoTaskWithoutCredits) {
  Submit(Echoes(3));
  WorkerKey w = Worker("w1");
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  scheduler_.AddCredits(w, 0);
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  EXPECT_EQ(scheduler_.queued(), 3u);
}

TEST_F(SchedulerTest, NothingToDispatchWithoutTasks) {
  Worker("w1", 10);
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
}

TEST_F(SchedulerTest, DispatchNeverExceedsCreditsAcrossCalls) {
  JobId job = Submit(Echoes(20));
  WorkerKey w = Worker("w1", 3);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(1));
  EXPECT_EQ(d[0].worker, w);
  EXPECT_THAT(d[0].assignments, SizeIs(3));
  // Credits are used up; results do not return any.
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  scheduler_.RecordResults(w, ResultsFor(d[0].assignments));
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());

  // Several grants add up.
  scheduler_.AddCredits(w, 2);
  scheduler_.AddCredits(w, 4);
  EXPECT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(6));
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());

  // More credits than tasks: the rest stay for later tasks.
  scheduler_.AddCredits(w, 100);
  EXPECT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(11));
  EXPECT_EQ(scheduler_.queued(), 0u);
  Submit(Echoes(200));
  EXPECT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(89));
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  EXPECT_EQ(scheduler_.queued(), 111u);
  EXPECT_EQ(Job(job).running(), 17u);
}

TEST_F(SchedulerTest, CreditsOfUnknownWorkerAreIgnored) {
  Submit(Echoes(3));
  scheduler_.AddCredits(42, 10);
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
}

TEST_F(SmallBatchTest, BatchesAreCappedAtMaxBatch) {
  Submit(Echoes(20));
  WorkerKey w = Worker("w1", 10);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(3));
  for (const Dispatch& dispatch : d) EXPECT_EQ(dispatch.worker, w);
  EXPECT_THAT(d[0].assignments, SizeIs(4));
  EXPECT_THAT(d[1].assignments, SizeIs(4));
  EXPECT_THAT(d[2].assignments, SizeIs(2));
  // In queue order across the batches.
  std::vector<v1::Assignment> all = Flatten(d);
  for (uint32_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].index(), i);
}

TEST_F(SmallBatchTest, EveryBatchOfTwoWorkersIsCapped) {
  Submit(Echoes(100));
  WorkerKey w1 = Worker("w1", 30);
  WorkerKey w2 = Worker("w2", 30);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  for (const Dispatch& dispatch : d) {
    EXPECT_LE(dispatch.assignments.size(), 4u);
    EXPECT_FALSE(dispatch.assignments.empty());
  }
  EXPECT_THAT(For(d, w1), SizeIs(30));
  EXPECT_THAT(For(d, w2), SizeIs(30));
}

TEST_F(SchedulerTest, SpreadsFairlyBetweenTwoWorkers) {
  Submit(Echoes(100));
  WorkerKey w1 = Worker("w1", 1000);
  WorkerKey w2 = Worker("w2", 1000);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  EXPECT_THAT(For(d, w1), SizeIs(50));
  EXPECT_THAT(For(d, w2), SizeIs(50));
  // One message each: shares are merged into the worker's open batch.
  EXPECT_THAT(d, SizeIs(2));
}

TEST_F(SchedulerTest, BigCreditWorkerDoesNotStarveAnother) {
  Submit(Echoes(200));
  WorkerKey big = Worker("big", 1'000'000);
  WorkerKey small = Worker("small", 100);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  EXPECT_THAT(For(d, small), SizeIs(100));
  EXPECT_THAT(For(d, big), SizeIs(100));
}

TEST_F(SchedulerTest, SmallWorkerGetsItsCreditsAndTheRestGoesToTheBigOne) {
  Submit(Echoes(100));
  WorkerKey big = Worker("big", 1000);
  WorkerKey small = Worker("small", 10);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  EXPECT_THAT(For(d, small), SizeIs(10));
  EXPECT_THAT(For(d, big), SizeIs(90));
  EXPECT_EQ(scheduler_.queued(), 0u);
}

TEST_F(SchedulerTest, SingleTasksAlternateBetweenWorkers) {
  WorkerKey w1 = Worker("w1", 100);
  WorkerKey w2 = Worker("w2", 100);
  std::vector<WorkerKey> got;
  for (int i = 0; i < 6; ++i) {
    Submit(Echoes(1));
    std::vector<Dispatch> d = scheduler_.TakeDispatches();
    ASSERT_THAT(d, SizeIs(1));
    got.push_back(d[0].worker);
  }
  EXPECT_THAT(got, ElementsAre(w1, w2, w1, w2, w1, w2));
}

TEST_F(SchedulerTest, FifoAcrossJobs) {
  JobId a = Submit(Echoes(3));
  JobId b = Submit(Echoes(2));
  JobId c = Submit(Echoes(1));
  Worker("w1", 100);
  EXPECT_THAT(Ids(Flatten(scheduler_.TakeDispatches())),
              ElementsAre(absl::StrCat(a, ":0@1"), absl::StrCat(a, ":1@1"),
                          absl::StrCat(a, ":2@1"), absl::StrCat(b, ":0@1"),
                          absl::StrCat(b, ":1@1"), absl::StrCat(c, ":0@1")));
}

TEST_F(SchedulerTest, AssignmentCarriesTheTask) {
  v1::Task task;
  task.set_kind("sleep");
  task.set_arg(250);
  task.set_timeout_ms(1000);
  task.set_max_attempts(2);
  JobId job = Submit({Echo("zero"), task});
  Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[0].job_id(), job);
  EXPECT_EQ(got[0].index(), 0u);
  EXPECT_EQ(got[0].attempt(), 1u);
  EXPECT_EQ(got[0].task().text(), "zero");
  EXPECT_EQ(got[1].index(), 1u);
  EXPECT_EQ(got[1].task().SerializeAsString(),
            AsSent(task, 3).SerializeAsString());
}

TEST_F(SchedulerTest, RemovedWorkerGetsNothing) {
  Submit(Echoes(3));
  WorkerKey w = Worker("w1", 3);
  scheduler_.RemoveWorker(w);
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  scheduler_.AddCredits(w, 3);
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  EXPECT_EQ(scheduler_.queued(), 3u);
}

// --- Results ----------------------------------------------------------------

TEST_F(SchedulerTest, ResultsGetCoordinatorTimestampsAndKeepWorkerFields) {
  JobId job = Submit(Echoes(1));
  clock_.Advance(absl::Microseconds(250));
  WorkerKey w = Worker("w1", 1);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(1));

  v1::TaskResult result = ResultFor(got[0]);
  result.set_worker("w1");
  result.set_executor("thread-3");
  result.set_started_us(kStartUs + 300);
  result.set_finished_us(kStartUs + 400);
  result.set_queued_us(12345);      // Ignored: the coordinator knows better.
  result.set_dispatched_us(12345);  // Same.
  clock_.Advance(absl::Microseconds(500));
  EXPECT_THAT(scheduler_.RecordResults(w, {result}), ElementsAre(job));

  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(1));
  const v1::TaskResult& r = results[0];
  EXPECT_EQ(r.job_id(), job);
  EXPECT_EQ(r.index(), 0u);
  EXPECT_EQ(r.attempt(), 1u);
  EXPECT_EQ(r.state(), v1::TASK_STATE_OK);
  EXPECT_EQ(r.value(), "t0");
  EXPECT_EQ(r.worker(), "w1");
  EXPECT_EQ(r.executor(), "thread-3");
  EXPECT_EQ(r.queued_us(), kStartUs);
  EXPECT_EQ(r.dispatched_us(), kStartUs + 250);
  EXPECT_EQ(r.started_us(), kStartUs + 300);
  EXPECT_EQ(r.finished_us(), kStartUs + 400);
}

TEST_F(SchedulerTest, MissingWorkerNameIsFilledIn) {
  JobId job = Submit(Echoes(1));
  WorkerKey w = Worker("w7", 1);
  scheduler_.RecordResults(w, ResultsFor(Flatten(scheduler_.TakeDispatches())));
  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_EQ(results[0].worker(), "w7");
}

// Results for tasks a worker was never given are reported as violations;
// late results of tasks it did have (an earlier attempt, a finished task)
// are dropped quietly.
TEST_F(SchedulerTest, ResultsNeverGivenAreViolations) {
  JobId job = Submit(Echoes(3));
  WorkerKey w1 = Worker("w1", 1);
  WorkerKey w2 = Worker("w2", 1);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(2));
  // Dispatch serves w1 first: got[0] runs on w1, got[1] on w2.
  auto violation_of = [&](WorkerKey w, v1::TaskResult r) {
    std::string violation;
    scheduler_.RecordResults(w, {std::move(r)}, &violation);
    return violation;
  };
  // The task w1 runs, sent by w2.
  EXPECT_THAT(violation_of(w2, ResultFor(got[0])), HasSubstr("never given"));
  v1::TaskResult unknown_job = ResultFor(got[0]);
  unknown_job.set_job_id(999);
  EXPECT_THAT(violation_of(w1, unknown_job), HasSubstr("job 999"));
  v1::TaskResult bad_index = ResultFor(got[0]);
  bad_index.set_index(7);
  EXPECT_THAT(violation_of(w1, bad_index), HasSubstr("task 7"));
  v1::TaskResult future_attempt = ResultFor(got[0]);
  future_attempt.set_attempt(2);
  EXPECT_THAT(violation_of(w1, future_attempt), HasSubstr("attempt 2"));
  v1::TaskResult never_dispatched = ResultFor(got[0]);
  never_dispatched.set_index(2);
  EXPECT_THAT(violation_of(w1, never_dispatched), HasSubstr("never given"));
  EXPECT_THAT(AllResults(job), IsEmpty());
  // The right worker: recorded, no violation; the same again is a quiet
  // duplicate.
  std::string none;
  std::vector<v1::TaskResult> results = {ResultFor(got[0])};
  scheduler_.RecordResults(w1, results, &none);
  EXPECT_EQ(none, "");
  scheduler_.RecordResults(w1, results, &none);
  EXPECT_EQ(none, "");
  EXPECT_THAT(AllResults(job), SizeIs(1));
}

TEST_F(SchedulerTest, EachResultIsRecordedOnce) {
  JobId job = Submit(Echoes(3));
  WorkerKey w1 = Worker("w1", 2);
  WorkerKey w2 = Worker("w2", 0);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(2));

  // From a worker that does not run it.
  EXPECT_THAT(scheduler_.RecordResults(w2, {ResultFor(got[0])}), IsEmpty());
  // Wrong attempt.
  v1::TaskResult wrong_attempt = ResultFor(got[0]);
  wrong_attempt.set_attempt(2);
  EXPECT_THAT(scheduler_.RecordResults(w1, {wrong_attempt}), IsEmpty());
  // Unknown job, index out of range, a task never assigned (still queued).
  v1::TaskResult unknown_job = ResultFor(got[0]);
  unknown_job.set_job_id(999);
  v1::TaskResult bad_index = ResultFor(got[0]);
  bad_index.set_index(3);
  v1::TaskResult queued = ResultFor(got[0]);
  queued.set_index(2);
  EXPECT_THAT(scheduler_.RecordResults(w1, {unknown_job, bad_index, queued}),
              IsEmpty());
  // Unknown worker.
  EXPECT_THAT(scheduler_.RecordResults(77, {ResultFor(got[0])}), IsEmpty());
  EXPECT_THAT(AllResults(job), IsEmpty());

  // The right one, twice in one batch and again later.
  EXPECT_THAT(
      scheduler_.RecordResults(w1, {ResultFor(got[0]), ResultFor(got[0])}),
      ElementsAre(job));
  EXPECT_THAT(scheduler_.RecordResults(w1, {ResultFor(got[0])}), IsEmpty());
  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_EQ(results[0].index(), 0u);

  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.ok(), 1u);
  EXPECT_EQ(info.running(), 1u);
  EXPECT_EQ(info.queued(), 1u);
  std::vector<v1::WorkerInfo> workers = scheduler_.ListWorkers();
  ASSERT_THAT(workers, SizeIs(2));
  EXPECT_EQ(workers[0].completed(), 1u);
  EXPECT_EQ(workers[0].in_flight(), 1u);
  EXPECT_EQ(workers[1].completed(), 0u);
}

TEST_F(SchedulerTest, ChangedJobsAreReturnedOnceEach) {
  JobId a = Submit(Echoes(2));
  JobId b = Submit(Echoes(2));
  WorkerKey w = Worker("w1", 4);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(4));
  // Interleaved jobs in one batch.
  std::vector<v1::TaskResult> results = {ResultFor(got[0]), ResultFor(got[2]),
                                         ResultFor(got[1]), ResultFor(got[3])};
  EXPECT_THAT(scheduler_.RecordResults(w, results), ElementsAre(a, b));
}

TEST_F(SchedulerTest, NonFinalStateIsRecordedAsFailed) {
  JobId job = Submit(Echoes(3));
  WorkerKey w = Worker("w1", 3);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(3));
  v1::TaskResult unknown = ResultFor(got[2]);
  unknown.set_state(static_cast<v1::TaskState>(99));
  EXPECT_THAT(scheduler_.RecordResults(
                  w, {ResultFor(got[0], v1::TASK_STATE_UNSPECIFIED),
                      ResultFor(got[1], v1::TASK_STATE_RUNNING), unknown}),
              ElementsAre(job));
  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(3));
  EXPECT_EQ(results[0].state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(results[0].error(),
            "worker w1 sent invalid state 0 (unknown) as the task's result");
  EXPECT_EQ(results[1].state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(results[1].error(),
            "worker w1 sent invalid state 2 (running) as the task's result");
  EXPECT_EQ(results[2].state(), v1::TASK_STATE_FAILED);
  EXPECT_THAT(results[2].error(), HasSubstr("invalid state 99"));
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(info.failed(), 3u);
}

}  // namespace
}  // namespace qfarm::coordinator
