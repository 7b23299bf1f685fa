// Nothing lost, nothing duplicated, checked at the wire: workers of every
// mode killed with SIGKILL mid-batch, the coordinator killed and restarted,
// a worker frozen past its heartbeat timeout. Every result is read from the
// raw streams by tests/wire_check.h (no client-side duplicate filter) and
// checked against the value its task's distinct spec must produce. The
// random loop over more kill points is qfarm-chaos (tests/chaos_main.cc).
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/farm_client.h"
#include "common/grpc_options.h"
#include "common/task_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"
#include "tests/time_scale.h"
#include "tests/wire_check.h"

namespace qfarm::testing {
namespace {

std::string Str(const JsonObject& o, const std::string& key) {
  auto it = o.find(key);
  return it == o.end() ? "" : it->second;
}

// The most attempts any task of `job` needed, by the ledger's results.
uint32_t MaxAttempt(const ResultLedger& ledger, uint64_t job) {
  uint32_t most = 0;
  for (const v1::TaskResult& r : ledger.Results(job)) {
    most = std::max(most, r.attempt());
  }
  return most;
}

// Every index once in `qfarm --output=json` output, each OK with its spec's
// value (the client library's view; the wire check is the ledger's).
void ExpectCliSawEveryTaskOk(const std::string& out,
                             const std::vector<v1::Task>& tasks) {
  auto lines = ParseJsonLines(out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(lines->size(), tasks.size());
  std::set<size_t> seen;
  int bad = 0;
  for (const JsonObject& o : *lines) {
    size_t index = 0;
    ASSERT_TRUE(absl::SimpleAtoi(Str(o, "index"), &index));
    ASSERT_LT(index, tasks.size());
    EXPECT_TRUE(seen.insert(index).second) << "index " << index << " twice";
    const std::string want = ExpectedValue(tasks[index]).value_or("");
    if (Str(o, "status") != "ok" || Str(o, "value") != want) {
      ADD_FAILURE() << "index " << index << ": " << Str(o, "status") << " \""
                    << Str(o, "value") << "\", want ok \"" << want << "\" "
                    << Str(o, "error");
      if (++bad > 5) return;
    }
  }
}

class ChaosTest : public ::testing::Test {
 protected:
  void Connect(const LocalFarm& farm) {
    stub_ = v1::Farm::NewStub(MakeChannel(farm.address()));
    client_ = client::FarmClient::Create({.address = farm.address()});
  }

  std::mt19937_64 rng_{20261126};
  ResultLedger ledger_;
  std::shared_ptr<v1::Farm::Stub> stub_;
  std::unique_ptr<client::FarmClient> client_;
};

// Workers of all four modes are killed while they run tasks; their tasks
// run again elsewhere, and every task reports once, OK, with its value.
TEST_F(ChaosTest, KilledWorkersOfEveryModeLoseNothing) {
  // Enough attempts that a task caught by several kills still completes;
  // a task that kills its workers is covered by the scheduler's tests.
  auto farm = LocalFarm::Start({{.id = "w1", .mode = "serial", .slots = 1},
                                {.id = "w2", .mode = "thread", .slots = 4},
                                {.id = "w3", .mode = "async", .slots = 4}},
                               {"--max-attempts=20"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  Connect(**farm);
  // About five seconds of sleeps on these slots, each a distinct duration.
  const std::vector<v1::Task> tasks = DistinctTasks(
      "kill", {.echoes = 2000, .sleeps = 300, .min_sleep_ms = 10, .cpus = 20},
      rng_);
  absl::StatusOr<uint64_t> job = client_->SubmitJob(tasks);
  ASSERT_TRUE(job.ok()) << job.status();
  ledger_.AddJob(*job, tasks);
  absl::Status watched;
  std::thread watcher([&] {
    watched = WatchRaw(stub_.get(), *job, &ledger_,
                       absl::Now() + Scaled(absl::Seconds(120)));
  });

  // Each mode dies in turn: the replacements cycle through all four.
  const char* modes[] = {"auto", "serial", "thread", "async"};
  std::set<std::string> killed_modes;
  std::map<std::string, std::string> mode_of = {
      {"w1", "serial"}, {"w2", "thread"}, {"w3", "async"}};
  for (int round = 0; round < 10 && !ledger_.Complete(*job); ++round) {
    // Chaos pacing, not synchronisation: kill every few hundred ms.
    absl::SleepFor(absl::Milliseconds(200));
    const std::vector<std::string> ids = (*farm)->worker_ids();
    const std::string victim = ids[rng_() % ids.size()];
    (*farm)->KillWorker(victim);
    killed_modes.insert(mode_of[victim]);
    const std::string id = absl::StrCat("w", 4 + round);
    mode_of[id] = modes[round % 4];
    absl::Status started =
        (*farm)->StartWorker({.id = id,
                              .mode = mode_of[id],
                              .slots = mode_of[id] == "serial" ? 1 : 4});
    EXPECT_TRUE(started.ok()) << started;
  }
  watcher.join();
  EXPECT_TRUE(watched.ok()) << watched << (*farm)->Logs();
  EXPECT_EQ(ledger_.problem_count(), 0u) << ledger_.Report();
  EXPECT_TRUE(ledger_.Complete(*job)) << ledger_.Report();
  EXPECT_GE(killed_modes.size(), 3u);
  // The replacements are up (and so stop cleanly below).
  EXPECT_TRUE(
      (*farm)
          ->WaitForWorkers((*farm)->worker_ids().size(), absl::Seconds(30))
          .ok());
  // The kills did hit running tasks: some needed a second attempt.
  EXPECT_GE(MaxAttempt(ledger_, *job), 2u);
  absl::StatusOr<v1::JobInfo> info = client_->GetJob(*job);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(info->ok(), tasks.size());
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

// The coordinator is killed with SIGKILL mid-batch and restarted on the same
// data dir: `qfarm map` (the client library) reconnects, and a raw watcher
// and a new one after the job see every task exactly once, OK.
TEST_F(ChaosTest, CoordinatorRestartLosesNothing) {
  auto farm = LocalFarm::Start({{.id = "w1", .slots = 8},
                                {.id = "w2", .mode = "async", .slots = 8},
                                {.id = "w3", .mode = "auto", .slots = 8}});
  ASSERT_TRUE(farm.ok()) << farm.status();
  Connect(**farm);
  const std::vector<v1::Task> tasks = DistinctTasks(
      "restart",
      {.echoes = 2000, .sleeps = 200, .min_sleep_ms = 10, .cpus = 20}, rng_);
  const std::string specs_path = (*farm)->log_dir() + "/specs.txt";
  {
    std::ofstream specs(specs_path);
    for (const v1::Task& t : tasks) specs << FormatTaskSpec(t) << "\n";
  }
  auto map = Subprocess::Start(
      {BinPath("qfarm"), "--coordinator=" + (*farm)->address(), "map",
       "--from=" + specs_path, "--output=json"},
      {.stderr_path = (*farm)->log_dir() + "/map.err"});
  ASSERT_TRUE(map.ok());
  // Results are flowing: the job (the farm's first) is journaled and
  // running.
  absl::StatusOr<std::string> first = (*map)->ReadLine(absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status() << (*farm)->Logs();
  constexpr uint64_t kJob = 1;
  ledger_.AddJob(kJob, tasks);
  absl::Status watched;
  std::thread watcher([&] {
    watched = WatchRaw(stub_.get(), kJob, &ledger_,
                       absl::Now() + Scaled(absl::Seconds(120)));
  });
  absl::Status restarted = (*farm)->RestartCoordinator();
  EXPECT_TRUE(restarted.ok()) << restarted << (*farm)->Logs();
  const std::string rest = (*map)->ReadAll();
  absl::StatusOr<int> code = (*map)->WaitFor(absl::Seconds(120));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << (*farm)->Logs();
  ExpectCliSawEveryTaskOk(*first + "\n" + rest, tasks);
  watcher.join();
  EXPECT_TRUE(watched.ok()) << watched;
  // A watcher after the job gets the whole job again, once each, the same.
  EXPECT_TRUE(WatchRaw(stub_.get(), kJob, &ledger_,
                       absl::Now() + Scaled(absl::Seconds(60)))
                  .ok());
  EXPECT_EQ(ledger_.problem_count(), 0u) << ledger_.Report();
  EXPECT_TRUE(ledger_.Complete(kJob)) << ledger_.Report();
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

// A frozen worker (SIGSTOP) keeps its TCP connection but stops
// heartbeating: it is declared dead and its tasks run elsewhere; after
// SIGCONT its late results are dropped and it serves again.
TEST_F(ChaosTest, FrozenWorkerIsDetectedAndItsLateResultsDropped) {
  auto farm =
      LocalFarm::Start({{.id = "w1", .slots = 4}, {.id = "w2", .slots = 4}},
                       {"--heartbeat-timeout=1s"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  Connect(**farm);
  const std::vector<v1::Task> tasks = DistinctTasks(
      "frozen", {.echoes = 100, .sleeps = 150, .min_sleep_ms = 10}, rng_);
  absl::StatusOr<uint64_t> job = client_->SubmitJob(tasks);
  ASSERT_TRUE(job.ok()) << job.status();
  ledger_.AddJob(*job, tasks);
  Subprocess* frozen = (*farm)->worker("w1");
  frozen->Signal(SIGSTOP);
  absl::Status watched = WatchRaw(stub_.get(), *job, &ledger_,
                                  absl::Now() + Scaled(absl::Seconds(120)));
  EXPECT_TRUE(watched.ok()) << watched << (*farm)->Logs();
  EXPECT_EQ(ledger_.problem_count(), 0u) << ledger_.Report();
  EXPECT_TRUE(ledger_.Complete(*job)) << ledger_.Report();
  // Tasks w1 held were run again, by w2, with a higher attempt.
  EXPECT_GE(MaxAttempt(ledger_, *job), 2u);
  for (const v1::TaskResult& r : ledger_.Results(*job)) {
    if (r.attempt() == 1) continue;
    EXPECT_EQ(r.worker(), "w2") << "index " << r.index();
  }
  frozen->Signal(SIGCONT);
  // It reconnects (its old stream was ended) and takes the next job; what
  // it sent late changed nothing.
  ASSERT_TRUE((*farm)->WaitForWorkers(2, absl::Seconds(30)).ok());
  absl::StatusOr<v1::JobInfo> info = client_->GetJob(*job);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->ok(), tasks.size());
  EXPECT_TRUE(WatchRaw(stub_.get(), *job, &ledger_,
                       absl::Now() + Scaled(absl::Seconds(60)))
                  .ok());
  EXPECT_EQ(ledger_.problem_count(), 0u) << ledger_.Report();
  const std::vector<v1::Task> next =
      DistinctTasks("next", {.echoes = 50}, rng_);
  absl::StatusOr<uint64_t> next_job = client_->SubmitJob(next);
  ASSERT_TRUE(next_job.ok());
  ledger_.AddJob(*next_job, next);
  EXPECT_TRUE(WatchRaw(stub_.get(), *next_job, &ledger_,
                       absl::Now() + Scaled(absl::Seconds(60)))
                  .ok());
  EXPECT_EQ(ledger_.problem_count(), 0u) << ledger_.Report();
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

// A journal damaged on disk stops the coordinator at start-up with a clear
// message; it never starts on a silently shortened history.
TEST(ChaosJournalTest, TruncatedJournalIsReportedAtStartUp) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  {
    auto farm = LocalFarm::Start({{.id = "w1"}}, {"--data-dir=" + data});
    ASSERT_TRUE(farm.ok()) << farm.status();
    CommandResult r = (*farm)->Qfarm({"map", "echo:x", "--repeat=2000"});
    ASSERT_EQ(r.exit_code, 0);
    ASSERT_TRUE((*farm)->Stop().ok());
  }
  const std::string db = data + "/journal.db";
  std::error_code error;
  const auto size = std::filesystem::file_size(db, error);
  ASSERT_FALSE(error);
  std::filesystem::resize_file(db, size / 2, error);
  ASSERT_FALSE(error);
  CommandResult start =
      RunCommand({BinPath("qfarm-coordinator"), "--listen=127.0.0.1:0",
                  "--data-dir=" + data});
  EXPECT_EQ(start.exit_code, 1);
  EXPECT_THAT(start.err, ::testing::HasSubstr("journal.db"));
  EXPECT_EQ(start.out, "");
}

}  // namespace
}  // namespace qfarm::testing
