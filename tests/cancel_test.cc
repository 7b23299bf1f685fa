// Cancellation reaches the running task on the worker, in every mode: after
// CancelJob, the worker's running tasks (a sleep, a cpu loop, a GET that
// hangs: each would run for minutes) stop within a second, as the worker's
// own metrics show, and their slots come back as credits, so a follow-up
// job starts at once.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/farm_client.h"
#include "common/grpc_options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/http_test_server.h"
#include "tests/local_farm.h"
#include "tests/prometheus_scrape.h"
#include "tests/time_scale.h"
#include "tests/wire_check.h"

namespace qfarm::testing {
namespace {

// The sum of the samples of `family` whose labels contain `label`.
double SumSamples(const std::string& text, const std::string& family,
                  const std::string& label) {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, family + "{") ||
        !absl::StrContains(line, label)) {
      continue;
    }
    double value = 0;
    const size_t space = line.rfind(' ');
    if (space != absl::string_view::npos &&
        absl::SimpleAtod(line.substr(space + 1), &value)) {
      sum += value;
    }
  }
  return sum;
}

// Polls the worker's metrics until qfarm_worker_in_flight is `want`;
// returns how long that took, or DEADLINE_EXCEEDED with the last value.
absl::StatusOr<absl::Duration> WaitForInFlight(const std::string& metrics,
                                               const std::string& series,
                                               double want, absl::Time since,
                                               absl::Time deadline) {
  double last = -1;
  while (true) {
    absl::StatusOr<std::string> text = Scrape(metrics);
    if (text.ok()) {
      last = Sample(*text, series);
      if (last == want) return absl::Now() - since;
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(series, " is ", last, ", not ", want, " after ",
                       absl::FormatDuration(absl::Now() - since)));
    }
    absl::SleepFor(absl::Milliseconds(10));  // Polling a remote condition.
  }
}

class CancelAtWorkerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CancelAtWorkerTest, RunningTasksStopAndTheirSlotsComeBackAtOnce) {
  const std::string mode = GetParam();
  const int slots = mode == "serial" ? 1 : 4;
  auto http = HttpTestServer::Start();
  ASSERT_TRUE(http.ok()) << http.status();
  auto farm =
      LocalFarm::Start({{.id = "w1",
                         .mode = mode,
                         .slots = slots,
                         .extra_flags = {"--metrics-listen=127.0.0.1:0"}}},
                       {"--journal-sync=normal"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  absl::StatusOr<std::string> line =
      (*farm)->worker("w1")->ReadLine(absl::Seconds(20));
  ASSERT_TRUE(line.ok()) << line.status();
  const std::string metrics = AddressAfter(*line, "qfarm-worker metrics on ");
  ASSERT_FALSE(metrics.empty()) << *line;
  const std::string in_flight =
      absl::StrCat("qfarm_worker_in_flight{worker=\"w1\",mode=\"", mode, "\"}");
  auto client = client::FarmClient::Create({.address = (*farm)->address()});
  auto stub = v1::Farm::NewStub(MakeChannel((*farm)->address()));

  // One task per slot, each of which would run for minutes.
  const std::vector<std::string> kinds = {"sleep", "cpu", "http", "sleep"};
  std::vector<v1::Task> long_tasks;
  for (int i = 0; i < slots; ++i) {
    v1::Task& t = long_tasks.emplace_back();
    const std::string& kind = kinds[static_cast<size_t>(i) % kinds.size()];
    if (kind == "sleep") {
      t.set_kind("sleep");
      t.set_arg(600'000 + i);
    } else if (kind == "cpu") {
      t.set_kind("cpu");
      t.set_arg(1'000'000'000);
    } else {
      t.set_kind("http");
      t.set_text((*http)->Url("/hang"));
    }
  }
  absl::StatusOr<uint64_t> job = client->SubmitJob(long_tasks);
  ASSERT_TRUE(job.ok()) << job.status();
  // Every slot is busy with one of them.
  absl::StatusOr<absl::Duration> busy =
      WaitForInFlight(metrics, in_flight, slots, absl::Now(),
                      absl::Now() + Scaled(absl::Seconds(30)));
  ASSERT_TRUE(busy.ok()) << busy.status() << (*farm)->Logs();

  const absl::Time cancelled_at = absl::Now();
  absl::StatusOr<uint32_t> cancelled = client->CancelJob(*job);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(*cancelled, static_cast<uint32_t>(slots));
  // The worker stopped them: nothing runs on it within a second.
  absl::StatusOr<absl::Duration> stopped =
      WaitForInFlight(metrics, in_flight, 0, cancelled_at,
                      cancelled_at + Scaled(absl::Seconds(1)));
  EXPECT_TRUE(stopped.ok()) << stopped.status() << (*farm)->Logs();
  if (stopped.ok()) {
    std::cout << mode << ": the worker's slots were free "
              << absl::FormatDuration(*stopped) << " after CancelJob\n";
  }
  // Stopped by the cancel (reported cancelled), not run to completion.
  absl::StatusOr<std::string> text = Scrape(metrics);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(
      SumSamples(*text, "qfarm_worker_tasks_total", "state=\"cancelled\""),
      slots)
      << *text;

  // The slots came back as credits: a job that needs all of them starts
  // and finishes at once.
  ResultLedger ledger;
  std::mt19937_64 rng(7);
  const std::vector<v1::Task> next =
      DistinctTasks("next", {.echoes = slots}, rng);
  const absl::Time submitted = absl::Now();
  absl::StatusOr<uint64_t> next_job = client->SubmitJob(next);
  ASSERT_TRUE(next_job.ok()) << next_job.status();
  ledger.AddJob(*next_job, next);
  absl::Status watched = WatchRaw(stub.get(), *next_job, &ledger,
                                  submitted + Scaled(absl::Seconds(1)));
  EXPECT_TRUE(watched.ok()) << watched << (*farm)->Logs();
  EXPECT_TRUE(ledger.Complete(*next_job)) << ledger.Report();
  // And the cancelled job's results say so, once each.
  ledger.AddJob(*job, long_tasks, ResultLedger::Expect::kAnyFinal);
  EXPECT_TRUE(WatchRaw(stub.get(), *job, &ledger,
                       absl::Now() + Scaled(absl::Seconds(30)))
                  .ok());
  for (const v1::TaskResult& r : ledger.Results(*job)) {
    EXPECT_EQ(r.state(), v1::TASK_STATE_CANCELLED) << r.ShortDebugString();
  }
  EXPECT_EQ(ledger.problem_count(), 0u) << ledger.Report();
  absl::Status down = (*farm)->Stop();
  EXPECT_TRUE(down.ok()) << down;
}

INSTANTIATE_TEST_SUITE_P(Modes, CancelAtWorkerTest,
                         ::testing::Values("serial", "thread", "async", "auto"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qfarm::testing
