// Fixtures and helpers shared by the Scheduler's tests.
#pragma once

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
#include "coordinator/scheduler.h"  // IWYU pragma: export
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

inline constexpr int64_t kStartUs = 1'700'000'000'000'000;

inline v1::Task Echo(std::string text) {
  v1::Task task;
  task.set_kind("echo");
  task.set_text(std::move(text));
  return task;
}

inline std::vector<v1::Task> Echoes(size_t n) {
  std::vector<v1::Task> tasks;
  tasks.reserve(n);
  for (size_t i = 0; i < n; ++i) tasks.push_back(Echo(absl::StrCat("t", i)));
  return tasks;
}

inline v1::Task EchoWithAttempts(std::string text, uint32_t max_attempts) {
  v1::Task task = Echo(std::move(text));
  task.set_max_attempts(max_attempts);
  return task;
}

inline v1::TaskResult ResultFor(const v1::Assignment& a,
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
inline std::vector<v1::TaskResult> ResultsFor(
    const Assignments& assignments, v1::TaskState state = v1::TASK_STATE_OK) {
  std::vector<v1::TaskResult> results;
  for (const v1::Assignment& a : assignments) {
    results.push_back(ResultFor(a, state));
  }
  return results;
}

// All assignments of all dispatches, in order.
inline std::vector<v1::Assignment> Flatten(
    const std::vector<Dispatch>& dispatches) {
  std::vector<v1::Assignment> out;
  for (const Dispatch& d : dispatches) {
    out.insert(out.end(), d.assignments.begin(), d.assignments.end());
  }
  return out;
}

// Assignments dispatched to `worker`.
inline std::vector<v1::Assignment> For(const std::vector<Dispatch>& dispatches,
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
inline std::vector<std::string> Ids(const Assignments& assignments) {
  std::vector<std::string> out;
  for (const v1::Assignment& a : assignments) {
    out.push_back(absl::StrCat(a.job_id(), ":", a.index(), "@", a.attempt()));
  }
  return out;
}

// `task` as a worker is sent it: its kind named by `kind_index`, the kind's
// place in the worker's hello (for Worker(): cpu 0, echo 1, http 2, sleep 3).
inline v1::Task AsSent(v1::Task task, uint32_t kind_index) {
  task.clear_kind();
  task.set_kind_index(kind_index);
  return task;
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

  // A worker offering the built-in kinds.
  WorkerKey Worker(std::string id, uint32_t credits = 0) {
    return KindWorker(std::move(id), {"cpu", "echo", "http", "sleep"}, credits);
  }

  WorkerKey KindWorker(std::string id, std::vector<std::string> kinds,
                       uint32_t credits = 0) {
    WorkerKey key = scheduler_.AddWorker({.worker_id = std::move(id),
                                          .mode = "thread",
                                          .slots = 4,
                                          .kinds = std::move(kinds)});
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
  // Attempts and releases need no completion: kept apart.
  uint64_t AppendAttempts(std::vector<v1::TaskResult> attempts,
                          Done /*done*/) override {
    absl::MutexLock lock(&mu_);
    for (v1::TaskResult& a : attempts) attempts_.push_back(std::move(a));
    return 0;
  }
  uint64_t AppendRelease(std::vector<ReleasedJob> jobs,
                         Done /*done*/) override {
    absl::MutexLock lock(&mu_);
    for (ReleasedJob& job : jobs) released_.push_back(std::move(job));
    return 0;
  }
  // Stored jobs (StoreResults(true) first): their summaries are kept, and
  // LoadResults() gives a job's results from every append, in append order,
  // or the error set with FailLoads().
  void StoreResults(bool stores) {
    absl::MutexLock lock(&mu_);
    stores_ = stores;
  }
  bool StoresResults() const override {
    absl::MutexLock lock(&mu_);
    return stores_;
  }
  uint64_t AppendStored(std::vector<v1::StoredJob> jobs,
                        Done /*done*/) override {
    absl::MutexLock lock(&mu_);
    for (v1::StoredJob& job : jobs) stored_.push_back(std::move(job));
    return 0;
  }
  absl::StatusOr<std::vector<v1::TaskResult>> LoadResults(JobId job) override {
    absl::MutexLock lock(&mu_);
    ++loads_;
    if (!load_error_.ok()) return load_error_;
    std::vector<v1::TaskResult> out;
    for (const Append& append : appends_) {
      for (const v1::TaskResult& result : append.results) {
        if (result.job_id() == job) out.push_back(result);
      }
    }
    return out;
  }
  void FailLoads(absl::Status status) {
    absl::MutexLock lock(&mu_);
    load_error_ = std::move(status);
  }
  std::vector<v1::StoredJob> stored() const {
    absl::MutexLock lock(&mu_);
    return stored_;
  }
  int loads() const {
    absl::MutexLock lock(&mu_);
    return loads_;
  }
  std::vector<v1::TaskResult> attempts() const {
    absl::MutexLock lock(&mu_);
    return attempts_;
  }
  std::vector<ReleasedJob> released() const {
    absl::MutexLock lock(&mu_);
    return released_;
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
  std::vector<v1::TaskResult> attempts_ ABSL_GUARDED_BY(mu_);
  std::vector<ReleasedJob> released_ ABSL_GUARDED_BY(mu_);
  bool stores_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::StoredJob> stored_ ABSL_GUARDED_BY(mu_);
  absl::Status load_error_ ABSL_GUARDED_BY(mu_);
  int loads_ ABSL_GUARDED_BY(mu_) = 0;
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

}  // namespace qfarm::coordinator
