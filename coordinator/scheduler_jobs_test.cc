// The Scheduler: job states, cancellation, reading results, workers.
#include "coordinator/scheduler_test_util.h"

namespace qfarm::coordinator {
namespace {

// --- Job state --------------------------------------------------------------

TEST_F(SchedulerTest, JobRunsThenIsDone) {
  JobId job = Submit(Echoes(3));
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.job_id(), job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(info.total(), 3u);
  EXPECT_EQ(info.queued(), 3u);
  EXPECT_EQ(info.created_us(), kStartUs);
  EXPECT_EQ(info.finished_us(), 0);

  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  info = Job(job);
  EXPECT_EQ(info.queued(), 1u);
  EXPECT_EQ(info.running(), 2u);

  scheduler_.RecordResults(w, ResultsFor(got));
  info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(info.running(), 0u);
  EXPECT_EQ(info.ok(), 2u);

  scheduler_.AddCredits(w, 1);
  got = Flatten(scheduler_.TakeDispatches());
  clock_.Advance(absl::Milliseconds(7));
  scheduler_.RecordResults(w, ResultsFor(got));
  info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(info.queued(), 0u);
  EXPECT_EQ(info.running(), 0u);
  EXPECT_EQ(info.ok(), 3u);
  EXPECT_EQ(info.failed() + info.timed_out() + info.cancelled(), 0u);
  EXPECT_EQ(info.finished_us(), kStartUs + 7000);
}

TEST_F(SchedulerTest, JobWithAFailedOrTimedOutTaskFails) {
  JobId job = Submit(Echoes(3));
  WorkerKey w = Worker("w1", 3);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(3));
  scheduler_.RecordResults(w, {ResultFor(got[0], v1::TASK_STATE_FAILED)});
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_RUNNING);
  scheduler_.RecordResults(
      w, {ResultFor(got[1], v1::TASK_STATE_TIMED_OUT), ResultFor(got[2])});
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(info.ok(), 1u);
  EXPECT_EQ(info.failed(), 1u);
  EXPECT_EQ(info.timed_out(), 1u);
  // A failure reported by the worker is final: it is not retried.
  EXPECT_EQ(scheduler_.queued(), 0u);
  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(3));
  EXPECT_EQ(results[0].error(), "boom");
}

TEST_F(SchedulerTest, TaskStateFollowsTheTask) {
  JobId job = Submit(Echoes(3));
  auto state = [&](uint32_t index) {
    absl::StatusOr<v1::TaskState> s = scheduler_.GetTaskState(job, index);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.value_or(v1::TASK_STATE_UNSPECIFIED);
  };
  EXPECT_EQ(state(0), v1::TASK_STATE_QUEUED);
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  EXPECT_EQ(state(0), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(state(1), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(state(2), v1::TASK_STATE_QUEUED);
  scheduler_.RecordResults(
      w, {ResultFor(got[0]), ResultFor(got[1], v1::TASK_STATE_TIMED_OUT)});
  EXPECT_EQ(state(0), v1::TASK_STATE_OK);
  EXPECT_EQ(state(1), v1::TASK_STATE_TIMED_OUT);
  ASSERT_TRUE(scheduler_.CancelJob(job).ok());
  EXPECT_EQ(state(2), v1::TASK_STATE_CANCELLED);

  absl::StatusOr<v1::TaskState> bad = scheduler_.GetTaskState(job, 3);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      bad.status().message(),
      absl::StrCat("task index 3 is out of range: job ", job, " has 3 tasks"));
  EXPECT_EQ(scheduler_.GetTaskState(job + 1, 0).status().code(),
            absl::StatusCode::kNotFound);
}

// --- CancelJob --------------------------------------------------------------

TEST_F(SchedulerTest, CancelStopsQueuedAndRunningTasks) {
  JobId other = Submit(Echoes(1));
  JobId job = Submit(Echoes(6));
  WorkerKey w1 = Worker("w1", 2);  // other:0, job:0
  WorkerKey w2 = Worker("w2", 0);
  std::vector<v1::Assignment> on_w1 = Flatten(scheduler_.TakeDispatches());
  scheduler_.AddCredits(w2, 2);  // job:1, job:2
  std::vector<v1::Assignment> on_w2 = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(Ids(on_w1), ElementsAre(absl::StrCat(other, ":0@1"),
                                      absl::StrCat(job, ":0@1")));
  ASSERT_THAT(on_w2, SizeIs(2));
  scheduler_.RecordResults(w2, {ResultFor(on_w2[0])});  // job:1 ok
  EXPECT_EQ(scheduler_.queued(), 3u);

  clock_.Advance(absl::Seconds(3));
  absl::StatusOr<CancelOutcome> outcome = scheduler_.CancelJob(job);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->cancelled, 5u);  // 2 running, 3 queued.
  EXPECT_THAT(outcome->workers_to_notify, UnorderedElementsAre(w1, w2));
  EXPECT_EQ(scheduler_.queued(), 0u);

  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(info.ok(), 1u);
  EXPECT_EQ(info.cancelled(), 5u);
  EXPECT_EQ(info.queued(), 0u);
  EXPECT_EQ(info.running(), 0u);
  EXPECT_EQ(info.finished_us(), kStartUs + 3'000'000);

  std::vector<v1::TaskResult> results = AllResults(job);
  ASSERT_THAT(results, SizeIs(6));
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_EQ(results[i].state(), v1::TASK_STATE_CANCELLED);
    EXPECT_EQ(results[i].finished_us(), kStartUs + 3'000'000);
  }
  EXPECT_EQ(results[1].index(), 0u);
  EXPECT_EQ(results[1].worker(), "w1");
  EXPECT_EQ(results[1].attempt(), 1u);
  EXPECT_EQ(results[1].error(), "job cancelled while running on worker w1");
  EXPECT_EQ(results[3].index(), 3u);
  EXPECT_EQ(results[3].attempt(), 0u);
  EXPECT_EQ(results[3].error(), "job cancelled");

  // Late results for cancelled tasks are dropped; the other job's is not.
  EXPECT_THAT(scheduler_.RecordResults(w1, ResultsFor(on_w1)),
              ElementsAre(other));
  EXPECT_THAT(scheduler_.RecordResults(w2, {ResultFor(on_w2[1])}), IsEmpty());
  EXPECT_THAT(AllResults(job), SizeIs(6));
  EXPECT_EQ(Job(other).state(), v1::JOB_STATE_DONE);

  // Cancelled tasks are not in flight anymore and never dispatched.
  std::vector<v1::WorkerInfo> workers = scheduler_.ListWorkers();
  ASSERT_THAT(workers, SizeIs(2));
  EXPECT_EQ(workers[0].in_flight(), 0u);
  EXPECT_EQ(workers[1].in_flight(), 0u);
  scheduler_.AddCredits(w1, 10);
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  // Nor requeued when their worker goes.
  scheduler_.RemoveWorker(w2);
  EXPECT_EQ(scheduler_.queued(), 0u);
}

TEST_F(SchedulerTest, CancelOfQueuedJobNotifiesNoWorker) {
  JobId job = Submit(Echoes(4));
  absl::StatusOr<CancelOutcome> outcome = scheduler_.CancelJob(job);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->cancelled, 4u);
  EXPECT_THAT(outcome->workers_to_notify, IsEmpty());
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(SchedulerTest, WorkerToNotifyIsListedOnce) {
  JobId job = Submit(Echoes(5));
  WorkerKey w = Worker("w1", 5);
  scheduler_.TakeDispatches();
  absl::StatusOr<CancelOutcome> outcome = scheduler_.CancelJob(job);
  ASSERT_TRUE(outcome.ok());
  EXPECT_THAT(outcome->workers_to_notify, ElementsAre(w));
}

TEST_F(SchedulerTest, CancelOfFinishedJobChangesNothing) {
  JobId job = Submit(Echoes(1));
  WorkerKey w = Worker("w1", 1);
  scheduler_.RecordResults(w, ResultsFor(Flatten(scheduler_.TakeDispatches())));
  absl::StatusOr<CancelOutcome> outcome = scheduler_.CancelJob(job);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->cancelled, 0u);
  EXPECT_THAT(outcome->workers_to_notify, IsEmpty());
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);
  // Twice is fine too.
  ASSERT_TRUE(scheduler_.CancelJob(job).ok());
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);
}

TEST_F(SchedulerTest, ManyCancelledJobsLeaveTheQueueUsable) {
  // Enough stale entries to compact the queue several times.
  JobId keep = Submit(Echoes(3));
  for (int i = 0; i < 5; ++i) {
    JobId job = Submit(Echoes(3000));
    ASSERT_TRUE(scheduler_.CancelJob(job).ok());
  }
  JobId last = Submit(Echoes(2));
  EXPECT_EQ(scheduler_.queued(), 5u);
  Worker("w1", 100);
  EXPECT_THAT(
      Ids(Flatten(scheduler_.TakeDispatches())),
      ElementsAre(absl::StrCat(keep, ":0@1"), absl::StrCat(keep, ":1@1"),
                  absl::StrCat(keep, ":2@1"), absl::StrCat(last, ":0@1"),
                  absl::StrCat(last, ":1@1")));
}

// --- ReadResults, unknown jobs, workers -------------------------------------

TEST_F(SchedulerTest, ReadResultsPagesInCompletionOrder) {
  JobId job = Submit(Echoes(5));
  WorkerKey w = Worker("w1", 5);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(5));
  scheduler_.RecordResults(w, {ResultFor(got[3]), ResultFor(got[1])});

  absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->results, SizeIs(2));
  EXPECT_EQ(page->results[0].index(), 3u);
  EXPECT_EQ(page->results[1].index(), 1u);
  EXPECT_EQ(page->next_cursor, 2u);
  EXPECT_FALSE(page->finished);

  // Nothing new yet.
  page = scheduler_.ReadResults(job, 2, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(page->results, IsEmpty());
  EXPECT_EQ(page->next_cursor, 2u);
  EXPECT_FALSE(page->finished);

  scheduler_.RecordResults(
      w, {ResultFor(got[0]), ResultFor(got[4]), ResultFor(got[2])});
  page = scheduler_.ReadResults(job, 2, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->results, SizeIs(2));
  EXPECT_EQ(page->results[0].index(), 0u);
  EXPECT_EQ(page->results[1].index(), 4u);
  EXPECT_EQ(page->next_cursor, 4u);
  EXPECT_FALSE(page->finished);  // The page stops short of the end.

  page = scheduler_.ReadResults(job, 4, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->results, SizeIs(1));
  EXPECT_EQ(page->results[0].index(), 2u);
  EXPECT_EQ(page->next_cursor, 5u);
  EXPECT_TRUE(page->finished);

  page = scheduler_.ReadResults(job, 5, 2);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(page->results, IsEmpty());
  EXPECT_TRUE(page->finished);

  // A cursor past the end reads from the end.
  page = scheduler_.ReadResults(job, 100, 2);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(page->results, IsEmpty());
  EXPECT_EQ(page->next_cursor, 5u);
  EXPECT_TRUE(page->finished);
}

TEST_F(SchedulerTest, UnknownJobIsNotFound) {
  Submit(Echoes(1));
  EXPECT_EQ(scheduler_.ReadResults(2, 0, 10).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(scheduler_.GetJob(2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(scheduler_.CancelJob(2).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(scheduler_.GetJob(0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(scheduler_.GetJob(2).status().message(), "job 2 not found");
}

// --- Listing jobs ------------------------------------------------------------

// The ids of a ListJobs() page.
std::vector<JobId> IdsOf(const Scheduler::JobsPage& page) {
  std::vector<JobId> ids;
  for (const v1::JobInfo& info : page.jobs) ids.push_back(info.job_id());
  return ids;
}

TEST_F(SchedulerTest, ListJobsPagesNewestFirstAndEachJobOnce) {
  std::vector<JobId> submitted;
  for (int i = 0; i < 7; ++i) submitted.push_back(Submit(Echoes(1)));
  std::vector<JobId> listed;
  JobId before = 0;
  int pages = 0;
  do {
    Scheduler::JobsPage page =
        scheduler_.ListJobs(v1::JOB_STATE_UNSPECIFIED, before, 3, 1000);
    EXPECT_LE(page.jobs.size(), 3u);
    EXPECT_EQ(page.as_of_us, kStartUs);
    for (JobId id : IdsOf(page)) listed.push_back(id);
    before = page.next_before;
    ASSERT_LT(++pages, 10);
  } while (before != 0);
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(listed, ::testing::ElementsAreArray(submitted.rbegin(),
                                                  submitted.rend()));
  // A `before` that is no job's id (past the last, or released) starts
  // below it all the same.
  EXPECT_THAT(IdsOf(scheduler_.ListJobs(v1::JOB_STATE_UNSPECIFIED,
                                        submitted.back() + 100, 2, 1000)),
              ElementsAre(submitted[6], submitted[5]));
  // Jobs submitted after the first page do not shift the next ones.
  Scheduler::JobsPage first =
      scheduler_.ListJobs(v1::JOB_STATE_UNSPECIFIED, 0, 3, 1000);
  Submit(Echoes(1));
  EXPECT_THAT(IdsOf(scheduler_.ListJobs(v1::JOB_STATE_UNSPECIFIED,
                                        first.next_before, 3, 1000)),
              ElementsAre(submitted[3], submitted[2], submitted[1]));
}

TEST_F(SchedulerTest, ListJobsFiltersByStateAndCarriesTheClient) {
  const JobId done =
      *scheduler_.SubmitJob(Echoes(1), {}, nullptr, "ipv4:10.0.0.7");
  const JobId cancelled = Submit(Echoes(2));
  const JobId running = Submit(Echoes(1));
  WorkerKey w = Worker("w1", 1);
  scheduler_.RecordResults(w, ResultsFor(Flatten(scheduler_.TakeDispatches())));
  ASSERT_TRUE(scheduler_.CancelJob(cancelled).ok());
  ASSERT_EQ(Job(done).state(), v1::JOB_STATE_DONE);

  auto ids_in = [this](v1::JobState state) {
    return IdsOf(scheduler_.ListJobs(state, 0, 100, 1000));
  };
  EXPECT_THAT(ids_in(v1::JOB_STATE_UNSPECIFIED),
              ElementsAre(running, cancelled, done));
  EXPECT_THAT(ids_in(v1::JOB_STATE_DONE), ElementsAre(done));
  EXPECT_THAT(ids_in(v1::JOB_STATE_CANCELLED), ElementsAre(cancelled));
  EXPECT_THAT(ids_in(v1::JOB_STATE_RUNNING), ElementsAre(running));
  EXPECT_THAT(ids_in(v1::JOB_STATE_FAILED), IsEmpty());

  Scheduler::JobsPage page = scheduler_.ListJobs(v1::JOB_STATE_DONE, 0, 1, 10);
  ASSERT_THAT(page.jobs, SizeIs(1));
  EXPECT_EQ(page.jobs[0].client(), "ipv4:10.0.0.7");
  EXPECT_EQ(page.jobs[0].ok(), 1u);
  // GetJob() shows the same.
  EXPECT_EQ(Job(done).client(), "ipv4:10.0.0.7");
  EXPECT_EQ(Job(running).client(), "");
}

TEST_F(SchedulerTest, ListJobsLooksAtABoundedNumberOfJobsPerCall) {
  const JobId oldest = Submit(Echoes(1));
  for (int i = 0; i < 5; ++i) Submit(Echoes(1));
  ASSERT_TRUE(scheduler_.CancelJob(oldest).ok());
  // Only the oldest matches: a call that may look at 2 jobs returns none,
  // and where to go on.
  Scheduler::JobsPage page =
      scheduler_.ListJobs(v1::JOB_STATE_CANCELLED, 0, 10, 2);
  EXPECT_THAT(page.jobs, IsEmpty());
  ASSERT_NE(page.next_before, 0u);
  int calls = 1;
  while (page.jobs.empty() && page.next_before != 0) {
    page =
        scheduler_.ListJobs(v1::JOB_STATE_CANCELLED, page.next_before, 10, 2);
    ++calls;
  }
  EXPECT_THAT(IdsOf(page), ElementsAre(oldest));
  EXPECT_EQ(page.next_before, 0u);
  EXPECT_EQ(calls, 3);
}

TEST_F(SchedulerTest, ListWorkersDescribesEachConnection) {
  EXPECT_THAT(scheduler_.ListWorkers(), IsEmpty());
  Submit(Echoes(5));
  WorkerKey w1 = scheduler_.AddWorker({.worker_id = "w1",
                                       .mode = "async",
                                       .slots = 8,
                                       .peer = "ipv4:1.2.3.4",
                                       .kinds = {"echo", "resize"}});
  clock_.Advance(absl::Seconds(1));
  WorkerKey w2 = scheduler_.AddWorker({.worker_id = "w2",
                                       .mode = "serial",
                                       .slots = 1,
                                       .peer = "ipv4:5.6.7.8",
                                       .kinds = {"sleep"}});
  EXPECT_NE(w1, w2);
  scheduler_.AddCredits(w1, 3);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  scheduler_.RecordResults(w1, {ResultFor(got[0])});

  std::vector<v1::WorkerInfo> workers = scheduler_.ListWorkers();
  ASSERT_THAT(workers, SizeIs(2));
  EXPECT_EQ(workers[0].worker_id(), "w1");
  EXPECT_EQ(workers[0].mode(), "async");
  EXPECT_EQ(workers[0].slots(), 8u);
  EXPECT_EQ(workers[0].in_flight(), 2u);
  EXPECT_EQ(workers[0].completed(), 1u);
  EXPECT_EQ(workers[0].peer(), "ipv4:1.2.3.4");
  EXPECT_EQ(workers[0].connected_us(), kStartUs);
  EXPECT_THAT(workers[0].kinds(), ElementsAre("echo", "resize"));
  EXPECT_EQ(workers[1].worker_id(), "w2");
  EXPECT_EQ(workers[1].mode(), "serial");
  EXPECT_EQ(workers[1].slots(), 1u);
  EXPECT_EQ(workers[1].in_flight(), 0u);
  EXPECT_EQ(workers[1].completed(), 0u);
  EXPECT_EQ(workers[1].peer(), "ipv4:5.6.7.8");
  EXPECT_EQ(workers[1].connected_us(), kStartUs + 1'000'000);
  EXPECT_THAT(workers[1].kinds(), ElementsAre("sleep"));

  scheduler_.RemoveWorker(w1);
  workers = scheduler_.ListWorkers();
  ASSERT_THAT(workers, SizeIs(1));
  EXPECT_EQ(workers[0].worker_id(), "w2");
}

}  // namespace
}  // namespace qfarm::coordinator
