// A full queue pushes back with RESOURCE_EXHAUSTED, and
// ClientOptions::retry_full_queue_for makes the client library wait for
// room: accepted once the queue drains, refused once the time is up.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/farm_client.h"
#include "common/grpc_options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"
#include "tests/time_scale.h"
#include "tests/wire_check.h"

namespace qfarm::testing {
namespace {

using ::testing::HasSubstr;

TEST(BackpressureTest, ARetryingClientIsAcceptedOnceTheQueueDrains) {
  // Two slots, a queue of 20: a job of 20 sleeps leaves 18 queued, and a
  // second job of 10 fits only once 8 more have started.
  auto farm = LocalFarm::Start({{.id = "w1", .mode = "thread", .slots = 2}},
                               {"--max-queued=20", "--ephemeral"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  const std::string address = (*farm)->address();
  std::mt19937_64 rng(11);
  const std::vector<v1::Task> first = DistinctTasks(
      "first", {.echoes = 0, .sleeps = 20, .min_sleep_ms = 500}, rng);
  const std::vector<v1::Task> second =
      DistinctTasks("second", {.echoes = 10}, rng);
  auto plain = client::FarmClient::Create({.address = address});
  absl::StatusOr<uint64_t> first_job = plain->SubmitJob(first);
  ASSERT_TRUE(first_job.ok()) << first_job.status();

  // Without retries: refused at once, saying why.
  absl::StatusOr<uint64_t> refused = plain->SubmitJob(second);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted)
      << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("queue full"));
  // Still no room for it when the retrying client starts.
  absl::StatusOr<v1::JobInfo> info = plain->GetJob(*first_job);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_GT(info->queued(), 10u);

  auto patient = client::FarmClient::Create(
      {.address = address, .retry_full_queue_for = Scaled(absl::Seconds(60))});
  absl::StatusOr<uint64_t> second_job = patient->SubmitJob(second);
  ASSERT_TRUE(second_job.ok()) << second_job.status();
  // It was taken when there was room, not before: the first job had moved.
  info = plain->GetJob(*first_job);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_LE(info->queued(), 10u);

  auto stub = v1::Farm::NewStub(MakeChannel(address));
  ResultLedger ledger;
  ledger.AddJob(*first_job, first);
  ledger.AddJob(*second_job, second);
  for (uint64_t job : {*first_job, *second_job}) {
    EXPECT_TRUE(WatchRaw(stub.get(), job, &ledger,
                         absl::Now() + Scaled(absl::Seconds(60)))
                    .ok());
    EXPECT_TRUE(ledger.Complete(job));
  }
  EXPECT_EQ(ledger.problem_count(), 0u) << ledger.Report();
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

TEST(BackpressureTest, ARetryingClientGivesUpWhenItsTimeIsUp) {
  // No worker: the full queue never drains.
  auto farm = LocalFarm::Start({}, {"--max-queued=10", "--ephemeral"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  std::mt19937_64 rng(12);
  auto plain = client::FarmClient::Create({.address = (*farm)->address()});
  ASSERT_TRUE(
      plain->SubmitJob(DistinctTasks("fill", {.echoes = 10}, rng)).ok());

  const absl::Duration patience = absl::Seconds(1);
  auto patient = client::FarmClient::Create(
      {.address = (*farm)->address(), .retry_full_queue_for = patience});
  const absl::Time start = absl::Now();
  absl::StatusOr<uint64_t> job =
      patient->SubmitJob(DistinctTasks("late", {.echoes = 1}, rng));
  const absl::Duration waited = absl::Now() - start;
  EXPECT_EQ(job.status().code(), absl::StatusCode::kResourceExhausted)
      << job.status();
  // It retried (pauses of 20, 40, ... 320 ms; it stops before a pause that
  // would end past its time, here after about 620 ms) and then gave up.
  EXPECT_GE(waited, patience / 2);
  EXPECT_LT(waited, patience + Scaled(absl::Seconds(10)));
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

}  // namespace
}  // namespace qfarm::testing
