// A worker's drain on SIGTERM, without Kubernetes: what finishes inside
// --drain-grace is sent from the draining worker; what still runs when the
// grace runs out is handed back, re-queued by the coordinator and completed
// by another worker with the next attempt. The draining worker exits 0.
#include <signal.h>

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

// Polls the coordinator until `worker` runs `count` tasks.
absl::Status WaitForRunning(client::FarmClient& client,
                            const std::string& worker, uint32_t count,
                            absl::Time deadline) {
  uint32_t last = 0;
  while (true) {
    absl::StatusOr<std::vector<v1::WorkerInfo>> workers = client.ListWorkers();
    if (workers.ok()) {
      for (const v1::WorkerInfo& w : *workers) {
        if (w.worker_id() == worker) last = w.in_flight();
      }
      if (last == count) return absl::OkStatus();
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(worker, " runs ", last, " tasks, not ", count, " (",
                       workers.status().ToString(), ")"));
    }
    absl::SleepFor(absl::Milliseconds(10));  // Polling a remote condition.
  }
}

class DrainTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DrainTest, FinishesWhatItCanInTheGraceAndHandsBackTheRest) {
  const std::string mode = GetParam();
  const int slots = mode == "serial" ? 1 : 4;
  const absl::Duration grace = Scaled(absl::Milliseconds(1500));
  auto farm = LocalFarm::Start(
      {{.id = "w1",
        .mode = mode,
        .slots = slots,
        .extra_flags = {absl::StrCat(
            "--drain-grace=", absl::ToInt64Milliseconds(grace), "ms")}}},
      {"--journal-sync=normal"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  auto client = client::FarmClient::Create({.address = (*farm)->address()});
  auto stub = v1::Farm::NewStub(MakeChannel((*farm)->address()));

  // Short sleeps end well inside the grace; long ones outlast it by
  // seconds. Each a distinct duration.
  const int64_t long_ms = absl::ToInt64Milliseconds(grace) + 3000;
  std::vector<v1::Task> tasks;
  for (int i = 0; i < slots; ++i) {
    v1::Task& t = tasks.emplace_back();
    t.set_kind("sleep");
    const bool is_short = slots > 1 && i % 2 == 0;
    t.set_arg(is_short ? 200 + i : long_ms + i);
  }
  absl::StatusOr<uint64_t> job = client->SubmitJob(tasks);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitForRunning(*client, "w1", static_cast<uint32_t>(slots),
                             absl::Now() + Scaled(absl::Seconds(30)))
                  .ok())
      << (*farm)->Logs();
  ASSERT_TRUE(
      (*farm)->StartWorker({.id = "w2", .mode = "thread", .slots = 4}).ok());
  ASSERT_TRUE((*farm)->WaitForWorkers(2, absl::Seconds(30)).ok());

  const absl::Time term = absl::Now();
  (*farm)->worker("w1")->Signal(SIGTERM);
  absl::StatusOr<int> exit =
      (*farm)->worker("w1")->WaitFor(grace + Scaled(absl::Seconds(10)));
  const absl::Duration drained = absl::Now() - term;
  ASSERT_TRUE(exit.ok()) << "w1 did not exit after its drain grace\n"
                         << (*farm)->Logs();
  EXPECT_EQ(*exit, 0) << (*farm)->Logs();
  // It waited for the grace before giving the long tasks up.
  EXPECT_GE(drained, grace * 0.9);

  ResultLedger ledger;
  ledger.AddJob(*job, tasks);
  absl::Status watched = WatchRaw(stub.get(), *job, &ledger,
                                  absl::Now() + Scaled(absl::Seconds(60)));
  ASSERT_TRUE(watched.ok()) << watched << (*farm)->Logs();
  EXPECT_EQ(ledger.problem_count(), 0u) << ledger.Report();
  const std::vector<v1::TaskResult> results = ledger.Results(*job);
  ASSERT_EQ(results.size(), tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    const v1::TaskResult& r = results[i];
    if (tasks[i].arg() < long_ms) {
      // Finished during the drain: sent by w1 before it left.
      EXPECT_EQ(r.worker(), "w1") << r.ShortDebugString();
      EXPECT_EQ(r.attempt(), 1u) << r.ShortDebugString();
    } else {
      // Handed back when the grace ran out, run again by w2.
      EXPECT_EQ(r.worker(), "w2") << r.ShortDebugString();
      EXPECT_EQ(r.attempt(), 2u) << r.ShortDebugString();
    }
  }
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

INSTANTIATE_TEST_SUITE_P(Modes, DrainTest,
                         ::testing::Values("serial", "thread", "async", "auto"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qfarm::testing
