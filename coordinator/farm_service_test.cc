// FarmService's acceptance of jobs without a network or SQLite: a fake
// journal holds the callbacks, so the test decides when a job is durable.
#include "coordinator/farm_service.h"

#include <vector>

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakeJobJournal : public JobJournal {
 public:
  // The encoding is what the test looks at: the task count and the kinds.
  std::string EncodeJob(const std::vector<v1::Task>& tasks,
                        const std::vector<std::string>& job_kinds) override {
    encoded.emplace_back(tasks.size(), job_kinds);
    return std::to_string(encoded.size() - 1);
  }
  uint64_t AppendJob(JobId job, int64_t /*created_us*/,
                     std::string encoded_tasks, Done done) override {
    const auto& [count, job_kinds] = encoded.at(std::stoul(encoded_tasks));
    jobs.push_back(job);
    kinds.push_back(job_kinds);
    task_counts.push_back(count);
    pending.push_back(std::move(done));
    return pending.size();
  }
  uint64_t AppendResults(std::vector<v1::TaskResult>, Done done) override {
    pending.push_back(std::move(done));
    return pending.size();
  }
  uint64_t AppendCancel(JobId, std::vector<v1::TaskResult>,
                        Done done) override {
    pending.push_back(std::move(done));
    return pending.size();
  }
  uint64_t AppendAttempts(std::vector<v1::TaskResult>, Done) override {
    return 0;
  }
  uint64_t AppendRelease(std::vector<ReleasedJob>, Done) override { return 0; }
  uint64_t WhenDurable(Done done) override {
    pending.push_back(std::move(done));
    return pending.size();
  }
  void Complete(size_t i, absl::Status status = absl::OkStatus()) {
    std::move(pending.at(i))(std::move(status));
  }

  std::vector<std::pair<size_t, std::vector<std::string>>> encoded;
  std::vector<JobId> jobs;
  std::vector<size_t> task_counts;
  std::vector<std::vector<std::string>> kinds;
  std::vector<Done> pending;
};

std::vector<v1::Task> Sleeps(int n) {
  std::vector<v1::Task> tasks(static_cast<size_t>(n));
  for (v1::Task& t : tasks) {
    t.set_kind("sleep");
    t.set_arg(1000);
  }
  return tasks;
}

class FarmServiceTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  Scheduler scheduler_{&clock_};
  Router router_{&scheduler_};
  TokenAuth auth_;
  FarmService service_{&scheduler_, &router_, &auth_};
};

TEST_F(FarmServiceTest, AcceptedJobIsDurableOnlyOnceJournaled) {
  FakeJobJournal journal;
  service_.SetJournal(&journal);
  std::vector<std::pair<JobId, absl::Status>> durable;
  absl::StatusOr<JobId> job = service_.AcceptJob(
      Caller{"ipv4:127.0.0.1", "ipv4:127.0.0.1"}, Sleeps(3), {"sleep"},
      [&](JobId id, absl::Status s) { durable.emplace_back(id, s); });
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_THAT(journal.jobs, ElementsAre(*job));
  EXPECT_THAT(journal.task_counts, ElementsAre(3u));
  // The job's kind table goes with it.
  EXPECT_THAT(journal.kinds, ElementsAre(ElementsAre("sleep")));
  EXPECT_TRUE(durable.empty());
  journal.Complete(0);
  ASSERT_EQ(durable.size(), 1u);
  EXPECT_EQ(durable[0].first, *job);
  EXPECT_TRUE(durable[0].second.ok());
}

TEST_F(FarmServiceTest, WithoutAJournalDurableAtOnce) {
  bool durable = false;
  absl::StatusOr<JobId> job =
      service_.AcceptJob(Caller{"c", "c"}, Sleeps(1), {},
                         [&](JobId, absl::Status s) { durable = s.ok(); });
  ASSERT_TRUE(job.ok());
  EXPECT_TRUE(durable);
}

TEST_F(FarmServiceTest, RefusalsNameTheLimitAndAreNeverDurable) {
  service_.SetLimits({.max_tasks_per_job = 2, .max_jobs_per_client = 1});
  int durable = 0;
  auto count = [&](JobId, absl::Status) { ++durable; };
  absl::StatusOr<JobId> big =
      service_.AcceptJob(Caller{"c", "c"}, Sleeps(3), {}, count);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("--max-tasks-per-job"));
  ASSERT_TRUE(service_.AcceptJob(Caller{"c", "c"}, Sleeps(1), {}, count).ok());
  absl::StatusOr<JobId> second =
      service_.AcceptJob(Caller{"c", "c"}, Sleeps(1), {}, count);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.status().message(), HasSubstr("--max-jobs-per-client"));
  EXPECT_TRUE(
      service_.AcceptJob(Caller{"other", "other"}, Sleeps(1), {}, count).ok());
  EXPECT_EQ(durable, 2);
}

}  // namespace
}  // namespace qfarm::coordinator
