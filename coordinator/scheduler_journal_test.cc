// The Scheduler with a journal, and restored from one.
#include "coordinator/scheduler_test_util.h"

namespace qfarm::coordinator {
namespace {

// --- Journal mode -----------------------------------------------------------

TEST_F(JournaledTest, ResultsAreReadableOnlyOnceDurable) {
  JobId job = Submit(Echoes(2));
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  clock_.Advance(absl::Milliseconds(3));
  EXPECT_THAT(scheduler_.RecordResults(w, ResultsFor(got)), IsEmpty());

  // Recorded (counted, never recorded twice) but not readable.
  EXPECT_THAT(AllResults(job), IsEmpty());
  absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_FALSE(page->finished);
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(info.ok(), 2u);
  EXPECT_EQ(info.finished_us(), 0);
  EXPECT_THAT(scheduler_.RecordResults(w, ResultsFor(got)), IsEmpty());

  // The journal got them complete, with the coordinator's fields.
  ASSERT_EQ(journal_.size(), 1u);
  EXPECT_EQ(journal_.cancelled_job(0), 0u);
  std::vector<v1::TaskResult> journaled = journal_.results(0);
  ASSERT_THAT(journaled, SizeIs(2));
  EXPECT_EQ(journaled[0].job_id(), job);
  EXPECT_EQ(journaled[0].index(), 0u);
  EXPECT_EQ(journaled[0].worker(), "w1");
  EXPECT_EQ(journaled[0].queued_us(), kStartUs);
  EXPECT_EQ(journaled[1].index(), 1u);
  EXPECT_THAT(TakeWoken(), IsEmpty());

  journal_.Complete(0);
  EXPECT_THAT(TakeWoken(), ElementsAre(ElementsAre(job)));
  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(2));
  EXPECT_EQ(results[0].SerializeAsString(), journaled[0].SerializeAsString());
  info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(info.finished_us(), kStartUs + 3000);
  page = scheduler_.ReadResults(job, 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->finished);
}

TEST_F(JournaledTest, AppendsBecomeReadableInTheirOrder) {
  JobId a = Submit(Echoes(2));
  JobId b = Submit(Echoes(1));
  WorkerKey w = Worker("w1", 3);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(3));
  scheduler_.RecordResults(w, {ResultFor(got[0])});  // a:0, append 0
  scheduler_.RecordResults(w, {ResultFor(got[1]), ResultFor(got[2])});  // 1
  ASSERT_EQ(journal_.size(), 2u);

  // The later append is durable first: a:1 must not be readable before a:0,
  // so nothing is yet.
  journal_.Complete(1);
  EXPECT_THAT(TakeWoken(), IsEmpty());
  EXPECT_THAT(AllResults(a), IsEmpty());
  EXPECT_THAT(AllResults(b), IsEmpty());

  journal_.Complete(0);
  EXPECT_THAT(TakeWoken(), ElementsAre(ElementsAre(a, b)));
  std::vector<v1::TaskResult> results = AllResults(a);
  ASSERT_THAT(results, SizeIs(2));
  EXPECT_EQ(results[0].index(), 0u);
  EXPECT_EQ(results[1].index(), 1u);
  EXPECT_THAT(AllResults(b), SizeIs(1));
  EXPECT_EQ(Job(a).state(), v1::JOB_STATE_DONE);
}

TEST_F(JournaledTest, PageStopsAtTheFirstResultNotDurable) {
  JobId job = Submit(Echoes(3));
  WorkerKey w = Worker("w1", 3);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  scheduler_.RecordResults(w, {ResultFor(got[2])});
  journal_.Complete(0);
  scheduler_.RecordResults(w, {ResultFor(got[0])});
  absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->results, SizeIs(1));
  EXPECT_EQ(page->results[0].index(), 2u);
  EXPECT_EQ(page->next_cursor, 1u);
  journal_.Complete(1);
  page = scheduler_.ReadResults(job, 1, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->results, SizeIs(1));
  EXPECT_EQ(page->results[0].index(), 0u);
  EXPECT_FALSE(page->finished);
}

TEST_F(JournaledTest, LostExpiredAndCancelledResultsAreJournaledToo) {
  JobId job = Submit({EchoWithAttempts("a", 1), EchoWithAttempts("b", 1),
                      Echo("c"), Echo("d")});
  WorkerKey w1 = Worker("w1", 1);
  WorkerKey w2 = Worker("w2", 0);
  scheduler_.TakeDispatches();  // a on w1
  scheduler_.AddCredits(w2, 1);
  scheduler_.TakeDispatches();  // b on w2
  scheduler_.Heartbeat(w2);

  EXPECT_THAT(scheduler_.RemoveWorker(w1), IsEmpty());
  ASSERT_EQ(journal_.size(), 1u);
  ASSERT_THAT(journal_.results(0), SizeIs(1));
  EXPECT_EQ(journal_.results(0)[0].index(), 0u);
  EXPECT_THAT(journal_.results(0)[0].error(), HasSubstr("connection ended"));

  clock_.Advance(absl::Seconds(11));
  Expiry expiry = scheduler_.ExpireSilentWorkers();
  EXPECT_THAT(expiry.workers, ElementsAre(w2));
  EXPECT_THAT(expiry.jobs, IsEmpty());  // Readable later.
  ASSERT_EQ(journal_.size(), 2u);
  ASSERT_THAT(journal_.results(1), SizeIs(1));
  EXPECT_EQ(journal_.results(1)[0].index(), 1u);
  EXPECT_THAT(journal_.results(1)[0].error(), HasSubstr("silent for 11s"));

  absl::StatusOr<CancelOutcome> outcome = scheduler_.CancelJob(job);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->cancelled, 2u);
  ASSERT_EQ(journal_.size(), 3u);
  EXPECT_EQ(journal_.cancelled_job(2), job);
  std::vector<v1::TaskResult> cancelled = journal_.results(2);
  ASSERT_THAT(cancelled, SizeIs(2));
  EXPECT_EQ(cancelled[0].state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(cancelled[0].index(), 2u);
  EXPECT_EQ(cancelled[1].index(), 3u);
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_RUNNING);
  // A second cancel finds nothing to do and journals nothing.
  ASSERT_TRUE(scheduler_.CancelJob(job).ok());
  EXPECT_EQ(journal_.size(), 3u);

  journal_.Complete(0);
  journal_.Complete(1);
  journal_.Complete(2);
  EXPECT_THAT(TakeWoken(), ElementsAre(ElementsAre(job), ElementsAre(job),
                                       ElementsAre(job)));
  EXPECT_THAT(AllResults(job), SizeIs(4));
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(JournaledTest, FailedAppendKeepsItsAndLaterResultsUnreadable) {
  JobId job = Submit(Echoes(2));
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  scheduler_.RecordResults(w, {ResultFor(got[0])});
  scheduler_.RecordResults(w, {ResultFor(got[1])});
  journal_.Complete(0, absl::ResourceExhaustedError("disk full"));
  // Its readers are woken to learn that the results never come.
  EXPECT_THAT(TakeWoken(), ElementsAre(ElementsAre(job)));
  journal_.Complete(1);
  EXPECT_THAT(TakeWoken(), IsEmpty());
  absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, 0, 10);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(page.status().message(), HasSubstr("disk full"));
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_RUNNING);
}

TEST_F(JournaledTest, FailedAppendLeavesEarlierResultsReadable) {
  JobId job = Submit(Echoes(2));
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  scheduler_.RecordResults(w, {ResultFor(got[0])});
  journal_.Complete(0);
  TakeWoken();
  scheduler_.RecordResults(w, {ResultFor(got[1])});
  journal_.Complete(1, absl::InternalError("io error"));
  EXPECT_THAT(TakeWoken(), ElementsAre(ElementsAre(job)));
  absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->results, SizeIs(1));
  EXPECT_EQ(page->results[0].index(), 0u);
  EXPECT_EQ(scheduler_.ReadResults(job, 1, 10).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(JournaledTest, NothingIsJournaledWhenNothingIsRecorded) {
  Submit(Echoes(2));
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  v1::TaskResult stale = ResultFor(got[0]);
  stale.set_attempt(7);
  scheduler_.RecordResults(w, {stale});
  scheduler_.RemoveWorker(w);  // Both requeued, none failed.
  EXPECT_EQ(journal_.size(), 0u);
}

// Results recorded from one thread while another completes the journal's
// appends in whatever order: every result becomes readable exactly once.
// Meant for ThreadSanitizer.
TEST_F(JournaledTest, ConcurrentRecordAndDurability) {
  constexpr size_t kTasks = 2000;
  JobId job = Submit(Echoes(kTasks));
  WorkerKey w = Worker("w1", kTasks);
  std::thread completer([&] {
    size_t completed = 0;
    while (completed < kTasks / 10) {
      const size_t size = journal_.size();
      // Newest first, to exercise out-of-order durability.
      for (size_t i = size; i > completed; --i) journal_.Complete(i - 1);
      completed = size;
      std::this_thread::yield();
    }
  });
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(kTasks));
  size_t cursor = 0;
  size_t read = 0;
  for (size_t i = 0; i < kTasks; i += 10) {
    std::vector<v1::Assignment> batch(got.begin() + i, got.begin() + i + 10);
    scheduler_.RecordResults(w, ResultsFor(batch));
    absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, cursor, 7);
    ASSERT_TRUE(page.ok());
    read += page->results.size();
    cursor = page->next_cursor;
  }
  completer.join();
  absl::StatusOr<ResultsPage> page =
      scheduler_.ReadResults(job, cursor, kTasks);
  ASSERT_TRUE(page.ok());
  read += page->results.size();
  EXPECT_TRUE(page->finished);
  EXPECT_EQ(read, kTasks);
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);
}

// --- Restore ----------------------------------------------------------------

v1::TaskResult Recorded(JobId job, uint32_t index, v1::TaskState state,
                        int64_t finished_us) {
  v1::TaskResult result;
  result.set_job_id(job);
  result.set_index(index);
  result.set_attempt(1);
  result.set_state(state);
  result.set_value(absl::StrCat("v", index));
  result.set_worker("old");
  result.set_queued_us(kStartUs - 5000);
  result.set_dispatched_us(kStartUs - 4000);
  result.set_finished_us(finished_us);
  return result;
}

RecoveredState SampleState() {
  RecoveredState state;
  // Listed out of order on purpose.
  state.jobs.push_back({.id = 9,
                        .created_us = kStartUs - 9000,
                        .tasks = Echoes(2),
                        .results = {Recorded(9, 1, v1::TASK_STATE_OK, 100),
                                    Recorded(9, 0, v1::TASK_STATE_OK, 300)}});
  state.jobs.push_back(
      {.id = 5,
       .created_us = kStartUs - 5000,
       .tasks = Echoes(3),
       .results = {Recorded(5, 1, v1::TASK_STATE_FAILED, 200)}});
  state.jobs.push_back(
      {.id = 7,
       .created_us = kStartUs - 7000,
       .cancelled = true,
       .tasks = Echoes(3),
       .results = {Recorded(7, 2, v1::TASK_STATE_OK, 150),
                   Recorded(7, 0, v1::TASK_STATE_CANCELLED, 160)}});
  return state;
}

TEST_F(SchedulerTest, RestoreKeepsResultsAndRequeuesTheRest) {
  ASSERT_TRUE(scheduler_.Restore(SampleState()).ok());
  EXPECT_EQ(scheduler_.queued(), 2u);  // 5:0 and 5:2.

  v1::JobInfo five = Job(5);
  EXPECT_EQ(five.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(five.total(), 3u);
  EXPECT_EQ(five.queued(), 2u);
  EXPECT_EQ(five.failed(), 1u);
  EXPECT_EQ(five.created_us(), kStartUs - 5000);
  std::vector<v1::TaskResult> results = AllResults(5);
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_EQ(results[0].SerializeAsString(),
            Recorded(5, 1, v1::TASK_STATE_FAILED, 200).SerializeAsString());

  v1::JobInfo nine = Job(9);
  EXPECT_EQ(nine.state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(nine.ok(), 2u);
  EXPECT_EQ(nine.finished_us(), 300);
  results = AllResults(9);
  ASSERT_THAT(results, SizeIs(2));
  EXPECT_EQ(results[0].index(), 1u);  // In journal order.
  EXPECT_EQ(results[1].index(), 0u);

  // The cancelled job's task without a result is cancelled now.
  v1::JobInfo seven = Job(7);
  EXPECT_EQ(seven.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(seven.ok(), 1u);
  EXPECT_EQ(seven.cancelled(), 2u);
  results = AllResults(7);
  ASSERT_THAT(results, SizeIs(3));
  EXPECT_EQ(results[2].index(), 1u);
  EXPECT_EQ(results[2].state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(results[2].error(), "job cancelled");
  EXPECT_EQ(scheduler_.GetTaskState(7, 1).value_or(v1::TASK_STATE_UNSPECIFIED),
            v1::TASK_STATE_CANCELLED);

  // New jobs continue after the largest id; the requeued tasks go first with
  // their attempts starting over.
  EXPECT_EQ(Submit(Echoes(1)), 10u);
  WorkerKey w = Worker("w1", 10);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  EXPECT_THAT(Ids(got), ElementsAre("5:0@1", "5:2@1", "10:0@1"));
  EXPECT_EQ(got[0].task().text(), "t0");
  EXPECT_THAT(scheduler_.RecordResults(w, ResultsFor(got)), ElementsAre(5, 10));
  EXPECT_EQ(Job(5).state(), v1::JOB_STATE_FAILED);
  results = AllResults(5);
  ASSERT_THAT(results, SizeIs(3));
  EXPECT_EQ(results[1].queued_us(), kStartUs - 5000);
}

TEST_F(JournaledTest, RestoredResultsAreReadableAtOnce) {
  ASSERT_TRUE(scheduler_.Restore(SampleState()).ok());
  EXPECT_THAT(AllResults(9), SizeIs(2));
  EXPECT_EQ(Job(9).state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(journal_.size(), 0u);
}

TEST_F(SchedulerTest, RestoreNeedsAnEmptyScheduler) {
  Submit(Echoes(1));
  absl::Status status = scheduler_.Restore(SampleState());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "Restore() needs an empty scheduler; it has 1 jobs and 0 workers");
}

TEST_F(SchedulerTest, RestoreOfNothingIsFine) {
  ASSERT_TRUE(scheduler_.Restore({}).ok());
  EXPECT_EQ(Submit(Echoes(1)), 1u);
}

TEST_F(SchedulerTest, RestoreRefusesAnInconsistentStateWhole) {
  struct Case {
    std::string name;
    std::function<void(RecoveredState&)> breakit;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"id 0", [](RecoveredState& s) { s.jobs[0].id = 0; },
       "recovered job id 0"},
      {"twice", [](RecoveredState& s) { s.jobs[0].id = 5; },
       "recovered job 5 appears twice"},
      {"no tasks", [](RecoveredState& s) { s.jobs[1].tasks.clear(); },
       "recovered job 5 has no tasks"},
      {"index", [](RecoveredState& s) { s.jobs[1].results[0].set_index(3); },
       "recovered job 5: result for task 3, past its 3 tasks"},
      {"second", [](RecoveredState& s) { s.jobs[0].results[1].set_index(1); },
       "recovered job 9: a second result for task 1"},
      {"not final",
       [](RecoveredState& s) {
         s.jobs[1].results[0].set_state(v1::TASK_STATE_RUNNING);
       },
       "recovered job 5: result for task 1 has state running, which is not "
       "final"},
  };
  for (const Case& c : cases) {
    RecoveredState state = SampleState();
    c.breakit(state);
    absl::Status status = scheduler_.Restore(std::move(state));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(status.message(), c.message) << c.name;
    // Nothing was restored.
    EXPECT_EQ(scheduler_.GetJob(9).status().code(), absl::StatusCode::kNotFound)
        << c.name;
    EXPECT_EQ(scheduler_.queued(), 0u) << c.name;
  }
}

}  // namespace
}  // namespace qfarm::coordinator
