// The Prometheus endpoints of the real coordinator and worker serve the
// text format, and their counters move when a job runs.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"
#include "tests/prometheus_scrape.h"

namespace qfarm::testing {
namespace {

using ::testing::HasSubstr;

// GET http://ADDRESS/metrics; a failed GET fails the test.
std::string ScrapeOrFail(const std::string& address) {
  absl::StatusOr<std::string> text = Scrape(address);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

TEST(MetricsTest, CountersMoveWhenAJobRuns) {
  TempDir dir;
  auto coordinator =
      Subprocess::Start({BinPath("qfarm-coordinator"), "--listen=127.0.0.1:0",
                         "--ephemeral", "--metrics-listen=127.0.0.1:0"},
                        {.stderr_path = dir.path() + "/coordinator.log"});
  ASSERT_TRUE(coordinator.ok());
  auto listening = (*coordinator)->ReadLine(absl::Seconds(20));
  auto metrics_line = (*coordinator)->ReadLine(absl::Seconds(20));
  ASSERT_TRUE(listening.ok() && metrics_line.ok());
  const std::string address =
      AddressAfter(*listening, "qfarm-coordinator listening on ");
  const std::string coordinator_metrics =
      AddressAfter(*metrics_line, "qfarm-coordinator metrics on ");
  ASSERT_FALSE(coordinator_metrics.empty()) << *metrics_line;

  auto worker = Subprocess::Start(
      {BinPath("qfarm-worker"), "--coordinator=" + address, "--mode=thread",
       "--slots=2", "--id=m1", "--metrics-listen=127.0.0.1:0"},
      {.stderr_path = dir.path() + "/worker.log"});
  ASSERT_TRUE(worker.ok());
  auto worker_line = (*worker)->ReadLine(absl::Seconds(20));
  ASSERT_TRUE(worker_line.ok());
  const std::string worker_metrics =
      AddressAfter(*worker_line, "qfarm-worker metrics on ");
  ASSERT_FALSE(worker_metrics.empty()) << *worker_line;

  const std::string before = ScrapeOrFail(coordinator_metrics);
  EXPECT_THAT(before, HasSubstr("# TYPE qfarm_queue_depth gauge"));
  EXPECT_THAT(before, HasSubstr("# TYPE qfarm_task_latency_seconds histogram"));
  EXPECT_EQ(Sample(before, "qfarm_queue_depth"), 0);
  EXPECT_EQ(
      Sample(before, "qfarm_tasks_finished_total{kind=\"echo\",state=\"ok\"}"),
      -1);

  std::vector<std::string> argv = {BinPath("qfarm"), "--coordinator=" + address,
                                   "map"};
  for (int i = 0; i < 10; ++i) argv.push_back("echo:x");
  argv.push_back("sleep:10s@timeout=10ms");
  CommandResult r = RunCommand(argv);
  EXPECT_EQ(r.exit_code, 1) << r.err;  // The timed-out sleep.

  const std::string after = ScrapeOrFail(coordinator_metrics);
  EXPECT_EQ(
      Sample(after, "qfarm_tasks_finished_total{kind=\"echo\",state=\"ok\"}"),
      10)
      << after;
  EXPECT_EQ(
      Sample(after,
             "qfarm_tasks_finished_total{kind=\"sleep\",state=\"timed_out\"}"),
      1);
  EXPECT_EQ(Sample(after, "qfarm_task_latency_seconds_count"), 11);
  EXPECT_EQ(Sample(after, "qfarm_workers_connected"), 1);
  // The map's client, remembered until a sweep; no Session holds anything.
  EXPECT_EQ(Sample(after, "qfarm_clients_tracked"), 1);
  EXPECT_EQ(Sample(after, "qfarm_session_refusals_queued"), 0);
  EXPECT_EQ(Sample(after, "qfarm_sessions_paused"), 0);
  EXPECT_EQ(Sample(after, "qfarm_worker_slots{worker=\"m1\",mode=\"thread\"}"),
            2);

  const std::string w = ScrapeOrFail(worker_metrics);
  EXPECT_EQ(Sample(w,
                   "qfarm_worker_tasks_total{kind=\"echo\",state=\"ok\","
                   "mode=\"thread\"}"),
            10)
      << w;
  EXPECT_EQ(Sample(w, "qfarm_worker_connected"), 1);
  EXPECT_EQ(Sample(w, "qfarm_worker_task_run_seconds_count{mode=\"thread\"}"),
            11);

  (*worker)->Signal(SIGTERM);
  EXPECT_EQ((*worker)->Wait(), 0);
  (*coordinator)->Signal(SIGTERM);
  EXPECT_EQ((*coordinator)->Wait(), 0);
}

TEST(MetricsTest, MetricsPortInUseIsAClearError) {
  TempDir dir;
  auto first =
      Subprocess::Start({BinPath("qfarm-coordinator"), "--listen=127.0.0.1:0",
                         "--ephemeral", "--metrics-listen=127.0.0.1:0"},
                        {.stderr_path = dir.path() + "/first.log"});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->ReadLine(absl::Seconds(20)).ok());
  auto metrics_line = (*first)->ReadLine(absl::Seconds(20));
  ASSERT_TRUE(metrics_line.ok());
  const std::string taken =
      AddressAfter(*metrics_line, "qfarm-coordinator metrics on ");
  CommandResult second =
      RunCommand({BinPath("qfarm-coordinator"), "--listen=127.0.0.1:0",
                  "--ephemeral", "--metrics-listen=" + taken});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("--metrics-listen=" + taken));
  (*first)->Signal(SIGTERM);
  EXPECT_EQ((*first)->Wait(), 0);
}

}  // namespace
}  // namespace qfarm::testing
