#include "coordinator/scheduler.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

constexpr int64_t kStartUs = 1'700'000'000'000'000;

v1::Task Echo(std::string text) {
  v1::Task task;
  task.set_kind(v1::TASK_KIND_ECHO);
  task.set_text(std::move(text));
  return task;
}

std::vector<v1::Task> Echoes(size_t n) {
  std::vector<v1::Task> tasks;
  tasks.reserve(n);
  for (size_t i = 0; i < n; ++i) tasks.push_back(Echo(absl::StrCat("t", i)));
  return tasks;
}

v1::Task EchoWithAttempts(std::string text, uint32_t max_attempts) {
  v1::Task task = Echo(std::move(text));
  task.set_max_attempts(max_attempts);
  return task;
}

v1::TaskResult ResultFor(const v1::Assignment& a,
                         v1::TaskState state = v1::TASK_STATE_OK) {
  v1::TaskResult result;
  result.set_job_id(a.job_id());
  result.set_index(a.index());
  result.set_attempt(a.attempt());
  result.set_state(state);
  if (state == v1::TASK_STATE_OK) result.set_value(a.task().text());
  if (state == v1::TASK_STATE_FAILED) result.set_error("boom");
  return result;
}

// `assignments`: a vector or a Dispatch's RepeatedPtrField.
template <typename Assignments>
std::vector<v1::TaskResult> ResultsFor(
    const Assignments& assignments, v1::TaskState state = v1::TASK_STATE_OK) {
  std::vector<v1::TaskResult> results;
  for (const v1::Assignment& a : assignments) {
    results.push_back(ResultFor(a, state));
  }
  return results;
}

// All assignments of all dispatches, in order.
std::vector<v1::Assignment> Flatten(const std::vector<Dispatch>& dispatches) {
  std::vector<v1::Assignment> out;
  for (const Dispatch& d : dispatches) {
    out.insert(out.end(), d.assignments.begin(), d.assignments.end());
  }
  return out;
}

// Assignments dispatched to `worker`.
std::vector<v1::Assignment> For(const std::vector<Dispatch>& dispatches,
                                WorkerKey worker) {
  std::vector<v1::Assignment> out;
  for (const Dispatch& d : dispatches) {
    if (d.worker != worker) continue;
    out.insert(out.end(), d.assignments.begin(), d.assignments.end());
  }
  return out;
}

// "job:index@attempt" of each assignment, for readable expectations.
template <typename Assignments>
std::vector<std::string> Ids(const Assignments& assignments) {
  std::vector<std::string> out;
  for (const v1::Assignment& a : assignments) {
    out.push_back(absl::StrCat(a.job_id(), ":", a.index(), "@", a.attempt()));
  }
  return out;
}

class SchedulerTest : public ::testing::Test {
 protected:
  explicit SchedulerTest(SchedulerOptions options = {})
      : clock_(absl::FromUnixMicros(kStartUs)), scheduler_(&clock_, options) {}

  JobId Submit(std::vector<v1::Task> tasks) {
    absl::StatusOr<JobId> job = scheduler_.SubmitJob(std::move(tasks));
    EXPECT_TRUE(job.ok()) << job.status();
    return job.value_or(0);
  }

  WorkerKey Worker(std::string id, uint32_t credits = 0) {
    WorkerKey key = scheduler_.AddWorker(
        {.worker_id = std::move(id), .mode = "thread", .slots = 4});
    if (credits > 0) scheduler_.AddCredits(key, credits);
    return key;
  }

  v1::JobInfo Job(JobId job) {
    absl::StatusOr<v1::JobInfo> info = scheduler_.GetJob(job);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.value_or(v1::JobInfo());
  }

  std::vector<v1::TaskResult> AllResults(JobId job) {
    absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, 0, 1 << 30);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->results : std::vector<v1::TaskResult>();
  }

  FakeClock clock_;
  Scheduler scheduler_;
};

class SmallQueueTest : public SchedulerTest {
 protected:
  SmallQueueTest() : SchedulerTest({.max_queued = 10}) {}
};

class SmallBatchTest : public SchedulerTest {
 protected:
  SmallBatchTest() : SchedulerTest({.max_batch = 4}) {}
};

class ShortBackoffCapTest : public SchedulerTest {
 protected:
  ShortBackoffCapTest()
      : SchedulerTest({.retry_backoff_base = absl::Milliseconds(100),
                       .retry_backoff_max = absl::Milliseconds(500)}) {}
};

class NoBackoffTest : public SchedulerTest {
 protected:
  NoBackoffTest()
      : SchedulerTest({.retry_backoff_base = absl::ZeroDuration()}) {}
};

class NoExpiryTest : public SchedulerTest {
 protected:
  NoExpiryTest()
      : SchedulerTest({.heartbeat_timeout = absl::InfiniteDuration()}) {}
};

// A journal that keeps what it is given and completes an append only when the
// test says so.
class FakeJournal : public ResultJournal {
 public:
  uint64_t AppendResults(std::vector<v1::TaskResult> results,
                         Done done) override {
    return Add(0, std::move(results), std::move(done));
  }
  uint64_t AppendCancel(JobId job, std::vector<v1::TaskResult> results,
                        Done done) override {
    return Add(job, std::move(results), std::move(done));
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return appends_.size();
  }
  // The job append `i` cancelled; 0 for plain results.
  JobId cancelled_job(size_t i) const {
    absl::MutexLock lock(&mu_);
    return appends_.at(i).cancelled_job;
  }
  std::vector<v1::TaskResult> results(size_t i) const {
    absl::MutexLock lock(&mu_);
    return appends_.at(i).results;
  }
  // Reports append `i` durable (or failed). Each append once.
  void Complete(size_t i, absl::Status status = absl::OkStatus()) {
    Done done;
    {
      absl::MutexLock lock(&mu_);
      done = std::move(appends_.at(i).done);
    }
    ASSERT_TRUE(done) << "append " << i << " completed twice";
    std::move(done)(std::move(status));
  }

 private:
  struct Append {
    JobId cancelled_job = 0;
    std::vector<v1::TaskResult> results;
    Done done;
  };

  uint64_t Add(JobId job, std::vector<v1::TaskResult> results, Done done) {
    absl::MutexLock lock(&mu_);
    appends_.push_back({job, std::move(results), std::move(done)});
    return appends_.size();
  }

  mutable absl::Mutex mu_;
  std::deque<Append> appends_ ABSL_GUARDED_BY(mu_);
};

class JournaledTest : public SchedulerTest {
 protected:
  JournaledTest() {
    scheduler_.SetJournal(&journal_, [this](const std::vector<JobId>& jobs) {
      absl::MutexLock lock(&mu_);
      woken_.push_back(jobs);
    });
  }

  // What on_readable was called with since the last call.
  std::vector<std::vector<JobId>> TakeWoken() {
    absl::MutexLock lock(&mu_);
    return std::exchange(woken_, {});
  }

  FakeJournal journal_;
  absl::Mutex mu_;
  std::vector<std::vector<JobId>> woken_ ABSL_GUARDED_BY(mu_);
};

// --- SubmitJob --------------------------------------------------------------

TEST_F(SchedulerTest, EmptyJobIsInvalid) {
  absl::StatusOr<JobId> job = scheduler_.SubmitJob({});
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(), "job has no tasks");
}

TEST_F(SchedulerTest, BadTaskNamesItsIndexAndNothingIsQueued) {
  std::vector<v1::Task> tasks = Echoes(5);
  tasks[3].set_kind(v1::TASK_KIND_SLEEP);
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
  task.set_kind(v1::TASK_KIND_SLEEP);
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
  EXPECT_EQ(got[1].task().SerializeAsString(), task.SerializeAsString());
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
  WorkerKey w = scheduler_.AddWorker({.mode = "thread", .slots = 1});
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

TEST_F(SchedulerTest, ListWorkersDescribesEachConnection) {
  EXPECT_THAT(scheduler_.ListWorkers(), IsEmpty());
  Submit(Echoes(5));
  WorkerKey w1 = scheduler_.AddWorker(
      {.worker_id = "w1", .mode = "async", .slots = 8, .peer = "ipv4:1.2.3.4"});
  clock_.Advance(absl::Seconds(1));
  WorkerKey w2 = scheduler_.AddWorker({.worker_id = "w2",
                                       .mode = "serial",
                                       .slots = 1,
                                       .peer = "ipv4:5.6.7.8"});
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
  EXPECT_EQ(workers[1].worker_id(), "w2");
  EXPECT_EQ(workers[1].mode(), "serial");
  EXPECT_EQ(workers[1].slots(), 1u);
  EXPECT_EQ(workers[1].in_flight(), 0u);
  EXPECT_EQ(workers[1].completed(), 0u);
  EXPECT_EQ(workers[1].peer(), "ipv4:5.6.7.8");
  EXPECT_EQ(workers[1].connected_us(), kStartUs + 1'000'000);

  scheduler_.RemoveWorker(w1);
  workers = scheduler_.ListWorkers();
  ASSERT_THAT(workers, SizeIs(1));
  EXPECT_EQ(workers[0].worker_id(), "w2");
}

// --- Threads and scale ------------------------------------------------------

// Clients submit while a worker thread takes, grants and reports; every task
// ends with exactly one result. Meant for ThreadSanitizer.
TEST_F(SchedulerTest, RecycledAssignmentsAreFilledAgain) {
  JobId a = Submit({Echo("first"), Echo(std::string(1000, 'x'))});
  WorkerKey w = Worker("w1", 2);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(1));
  ASSERT_THAT(d[0].assignments, SizeIs(2));
  const v1::Assignment* short_text = &d[0].assignments[0];
  scheduler_.RecycleAssignments(&d[0].assignments);
  EXPECT_THAT(d[0].assignments, IsEmpty());

  JobId b = Submit({EchoWithAttempts("second", 2), Echo("third")});
  scheduler_.AddCredits(w, 2);
  d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(1));
  // The spare with the short text is reused; the long one was not kept.
  EXPECT_THAT(Ids(d[0].assignments),
              ElementsAre(absl::StrCat(b, ":0@1"), absl::StrCat(b, ":1@1")));
  EXPECT_EQ(&d[0].assignments[0], short_text);
  EXPECT_EQ(d[0].assignments[0].task().SerializeAsString(),
            EchoWithAttempts("second", 2).SerializeAsString());
  EXPECT_EQ(d[0].assignments[1].task().SerializeAsString(),
            Echo("third").SerializeAsString());
  EXPECT_NE(a, b);
}

TEST_F(SchedulerTest, ViewResultsSeesTheRecordedResultsWithoutCopies) {
  JobId job = Submit(Echoes(3));
  WorkerKey w = Worker("w1", 3);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(3));
  scheduler_.RecordResults(w, {ResultFor(got[2]), ResultFor(got[0])});

  absl::StatusOr<ResultsView> view = scheduler_.ViewResults(job, 0, 10);
  ASSERT_TRUE(view.ok());
  ASSERT_THAT(view->results, SizeIs(2));
  EXPECT_EQ(view->next_cursor, 2u);
  EXPECT_FALSE(view->finished);
  absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->results, SizeIs(2));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(view->results[i]->SerializeAsString(),
              page->results[i].SerializeAsString());
  }
  const v1::TaskResult* first = view->results[0];
  const std::string first_bytes = first->SerializeAsString();

  // Later results leave the ones handed out where they were, unchanged.
  scheduler_.RecordResults(w, {ResultFor(got[1])});
  view = scheduler_.ViewResults(job, 0, 10);
  ASSERT_TRUE(view.ok());
  ASSERT_THAT(view->results, SizeIs(3));
  EXPECT_EQ(view->results[0], first);
  EXPECT_EQ(first->SerializeAsString(), first_bytes);
  EXPECT_EQ(view->results[2]->index(), 1u);
  EXPECT_TRUE(view->finished);

  view = scheduler_.ViewResults(job, 3, 10);
  ASSERT_TRUE(view.ok());
  EXPECT_THAT(view->results, IsEmpty());
  EXPECT_TRUE(view->finished);
  EXPECT_EQ(scheduler_.ViewResults(job + 1, 0, 10).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, RecordResultBatchTakesTheParsedMessages) {
  JobId job = Submit(Echoes(2));
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(2));
  v1::ResultBatch batch;
  *batch.add_results() = ResultFor(got[1]);
  *batch.add_results() = ResultFor(got[1]);  // A duplicate: dropped.
  v1::TaskResult unknown = ResultFor(got[0]);
  unknown.set_job_id(job + 1);
  *batch.add_results() = unknown;
  *batch.add_results() = ResultFor(got[0]);
  const v1::TaskResult* recorded = &batch.results(0);

  std::string violation;
  EXPECT_THAT(
      scheduler_.RecordResultBatch(w, batch.mutable_results(), &violation),
      ElementsAre(job));
  EXPECT_THAT(batch.results(), IsEmpty());
  EXPECT_THAT(violation, HasSubstr("never given"));
  absl::StatusOr<ResultsView> view = scheduler_.ViewResults(job, 0, 10);
  ASSERT_TRUE(view.ok());
  ASSERT_THAT(view->results, SizeIs(2));
  // The message itself, now the scheduler's, with the coordinator's fields.
  EXPECT_EQ(view->results[0], recorded);
  EXPECT_EQ(view->results[0]->index(), 1u);
  EXPECT_EQ(view->results[0]->worker(), "w1");
  EXPECT_EQ(view->results[0]->queued_us(), kStartUs);
  EXPECT_EQ(view->results[1]->index(), 0u);
  EXPECT_TRUE(view->finished);
  EXPECT_EQ(Job(job).ok(), 2u);
}

TEST_F(SchedulerTest, ConcurrentSubmitDispatchAndRecord) {
  constexpr int kJobs = 50;
  constexpr size_t kTasksPerJob = 40;
  WorkerKey w1 = Worker("w1", 16);
  WorkerKey w2 = Worker("w2", 16);
  std::vector<JobId> jobs(kJobs);
  std::thread client([&] {
    for (int i = 0; i < kJobs; ++i) {
      jobs[i] = scheduler_.SubmitJob(Echoes(kTasksPerJob)).value_or(0);
    }
  });
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i) {
      scheduler_.ListWorkers();
      (void)scheduler_.GetJob(1);
      (void)scheduler_.ReadResults(1, 0, 10);
    }
  });
  size_t done = 0;
  while (done < kJobs * kTasksPerJob) {
    for (const Dispatch& d : scheduler_.TakeDispatches()) {
      done += d.assignments.size();
      scheduler_.RecordResults(d.worker, ResultsFor(d.assignments));
      scheduler_.AddCredits(d.worker,
                            static_cast<uint32_t>(d.assignments.size()));
    }
    std::this_thread::yield();
  }
  client.join();
  reader.join();
  for (JobId job : jobs) {
    ASSERT_NE(job, 0u);
    EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);
  }
  uint64_t completed = 0;
  for (const v1::WorkerInfo& info : scheduler_.ListWorkers()) {
    completed += info.completed();
  }
  EXPECT_EQ(completed, kJobs * kTasksPerJob);
  (void)w1;
  (void)w2;
}

TEST_F(SchedulerTest, MillionTasksDispatchToTwoWorkers) {
  constexpr size_t kTasks = 1'000'000;
  JobId job = Submit(Echoes(kTasks));
  EXPECT_EQ(scheduler_.queued(), kTasks);
  WorkerKey w1 = Worker("w1");
  WorkerKey w2 = Worker("w2");
  size_t on_w1 = 0;
  size_t on_w2 = 0;
  size_t next_index = 0;
  while (scheduler_.queued() > 0) {
    scheduler_.AddCredits(w1, 2000);
    scheduler_.AddCredits(w2, 2000);
    std::vector<Dispatch> dispatches = scheduler_.TakeDispatches();
    ASSERT_FALSE(dispatches.empty());
    for (Dispatch& d : dispatches) {
      ASSERT_LE(d.assignments.size(), 1000u);
      (d.worker == w1 ? on_w1 : on_w2) += d.assignments.size();
      for (const v1::Assignment& a : d.assignments) {
        ASSERT_EQ(a.index(), next_index++);
      }
      scheduler_.RecordResults(d.worker, ResultsFor(d.assignments));
    }
  }
  EXPECT_EQ(on_w1 + on_w2, kTasks);
  EXPECT_EQ(on_w1, kTasks / 2);
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(info.ok(), kTasks);
}

}  // namespace
}  // namespace qfarm::coordinator
