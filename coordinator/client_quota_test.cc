#include "coordinator/client_quota.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

using ::testing::HasSubstr;

// Jobs are unfinished until the test finishes them.
struct FakeJobs {
  absl::Mutex mu;
  absl::flat_hash_set<JobId> finished ABSL_GUARDED_BY(mu);
  int asked ABSL_GUARDED_BY(mu) = 0;

  ClientQuota::UnfinishedFilter Filter() {
    return [this](std::vector<JobId> jobs) {
      absl::MutexLock lock(&mu);
      ++asked;
      std::erase_if(jobs, [this](JobId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return finished.contains(id);
      });
      return jobs;
    };
  }
  void Finish(JobId id) {
    absl::MutexLock lock(&mu);
    finished.insert(id);
  }
};

TEST(ClientQuotaTest, RefusesPastTheBoundUntilAJobFinishes) {
  FakeJobs jobs;
  ClientQuota quota(2, jobs.Filter());
  ASSERT_TRUE(quota.Reserve("a").ok());
  quota.Commit("a", 1);
  ASSERT_TRUE(quota.Reserve("a").ok());
  quota.Commit("a", 2);
  absl::Status full = quota.Reserve("a");
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("has 2 unfinished jobs"));
  EXPECT_TRUE(quota.Reserve("b").ok());  // Per client.
  jobs.Finish(1);
  EXPECT_TRUE(quota.Reserve("a").ok());
}

TEST(ClientQuotaTest, AsksOnlyWhenFull) {
  FakeJobs jobs;
  ClientQuota quota(3, jobs.Filter());
  for (JobId id = 1; id <= 3; ++id) {
    ASSERT_TRUE(quota.Reserve("a").ok());
    quota.Commit("a", id);
  }
  {
    absl::MutexLock lock(&jobs.mu);
    EXPECT_EQ(jobs.asked, 0);
  }
  EXPECT_FALSE(quota.Reserve("a").ok());
  absl::MutexLock lock(&jobs.mu);
  EXPECT_EQ(jobs.asked, 1);
}

TEST(ClientQuotaTest, ReservationsCountAndCancelFreesThem) {
  FakeJobs jobs;
  ClientQuota quota(2, jobs.Filter());
  ASSERT_TRUE(quota.Reserve("a").ok());
  ASSERT_TRUE(quota.Reserve("a").ok());
  EXPECT_FALSE(quota.Reserve("a").ok());  // Two submits in progress.
  quota.Cancel("a");                      // One was refused.
  EXPECT_TRUE(quota.Reserve("a").ok());
}

TEST(ClientQuotaTest, ZeroMeansNoBound) {
  FakeJobs jobs;
  ClientQuota quota(0, jobs.Filter());
  for (JobId id = 1; id <= 100; ++id) {
    ASSERT_TRUE(quota.Reserve("a").ok());
    quota.Commit("a", id);
  }
}

TEST(ClientQuotaTest, ConcurrentSubmitsNeverPassTheBound) {
  FakeJobs jobs;
  ClientQuota quota(5, jobs.Filter());
  std::atomic<int> accepted{0};
  std::atomic<JobId> next{1};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        if (!quota.Reserve("a").ok()) continue;
        ++accepted;
        quota.Commit("a", next++);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 5);  // No job ever finished.
}

// Clients that submit a job each and go: without the sweep every address
// would stay in the map for the process's life.
TEST(ClientQuotaTest, ForgetsClientsWhoseJobsFinished) {
  FakeJobs jobs;
  ClientQuota quota(2, jobs.Filter());
  constexpr JobId kClients = 10 * ClientQuota::kSweepAt;
  for (JobId id = 1; id <= kClients; ++id) {
    const std::string client = absl::StrCat("ipv4:10.0.", id / 256, ".", id);
    ASSERT_TRUE(quota.Reserve(client).ok());
    quota.Commit(client, id);
    jobs.Finish(id);
  }
  EXPECT_LE(quota.tracked_clients(), ClientQuota::kSweepAt);
}

TEST(ClientQuotaTest, SweepKeepsClientsWithUnfinishedJobs) {
  FakeJobs jobs;
  ClientQuota quota(2, jobs.Filter());
  ASSERT_TRUE(quota.Reserve("busy").ok());
  quota.Commit("busy", 1);
  ASSERT_TRUE(quota.Reserve("busy").ok());
  quota.Commit("busy", 2);
  ASSERT_TRUE(quota.Reserve("reserving").ok());  // Not committed yet.
  constexpr JobId kClients = 3 * ClientQuota::kSweepAt;
  for (JobId id = 3; id < 3 + kClients; ++id) {
    const std::string client = absl::StrCat("c", id);
    ASSERT_TRUE(quota.Reserve(client).ok());
    quota.Commit(client, id);
    jobs.Finish(id);
  }
  EXPECT_LE(quota.tracked_clients(), ClientQuota::kSweepAt);
  // Still at its bound, and its reservation still held.
  EXPECT_EQ(quota.Reserve("busy").code(), absl::StatusCode::kResourceExhausted);
  quota.Commit("reserving", 100'000);
  ASSERT_TRUE(quota.Reserve("reserving").ok());
  EXPECT_EQ(quota.Reserve("reserving").code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace qfarm::coordinator
