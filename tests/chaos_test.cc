// Nothing lost: workers killed with SIGKILL mid-batch, and every task still
// reports exactly one successful result.
#include <signal.h>

#include <filesystem>
#include <random>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"

namespace qfarm::testing {
namespace {

std::string Str(const JsonObject& o, const std::string& key) {
  auto it = o.find(key);
  return it == o.end() ? "" : it->second;
}

// Every index 0..n-1 exactly once, all ok. Returns the most attempts any
// task needed.
int ExpectEveryTaskOnceOk(const std::string& out, int n) {
  int max_attempt = 0;
  auto lines = ParseJsonLines(out);
  if (!lines.ok()) {
    ADD_FAILURE() << lines.status();
    return 0;
  }
  EXPECT_EQ(lines->size(), static_cast<size_t>(n));
  std::set<int> seen;
  int not_ok = 0;
  for (const JsonObject& o : *lines) {
    int index = -1;
    int attempt = 0;
    EXPECT_TRUE(absl::SimpleAtoi(Str(o, "index"), &index));
    EXPECT_TRUE(absl::SimpleAtoi(Str(o, "attempt"), &attempt));
    max_attempt = std::max(max_attempt, attempt);
    EXPECT_TRUE(seen.insert(index).second) << "index " << index << " twice";
    if (Str(o, "status") != "ok") {
      ++not_ok;
      ADD_FAILURE() << "index " << index << ": " << Str(o, "status") << " "
                    << Str(o, "error");
      if (not_ok > 5) return max_attempt;
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  return max_attempt;
}

TEST(ChaosTest, KilledWorkersLoseNothing) {
  // Enough attempts that a task caught by several kills still completes;
  // a task that kills its workers is covered by the scheduler's tests.
  auto farm = LocalFarm::Start({{.id = "w1", .slots = 4},
                                {.id = "w2", .slots = 4},
                                {.id = "w3", .slots = 4}},
                               {"--max-attempts=20"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  constexpr int kTasks = 5000;
  CommandResult submitted = (*farm)->Qfarm(
      {"submit", "sleep:10ms", absl::StrCat("--repeat=", kTasks)});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job(absl::StripAsciiWhitespace(submitted.out));

  std::mt19937 rng(20261126);
  std::vector<std::string> alive = {"w1", "w2", "w3"};
  for (int round = 0; round < 10; ++round) {
    // Chaos pacing, not synchronisation: kill every few hundred ms.
    absl::SleepFor(absl::Milliseconds(200));
    const size_t victim = rng() % alive.size();
    (*farm)->KillWorker(alive[victim]);
    alive[victim] = absl::StrCat("w", 4 + round);
    ASSERT_TRUE((*farm)->StartWorker({.id = alive[victim], .slots = 4}).ok());
  }
  CommandResult watched = (*farm)->Qfarm({"watch", job, "--output=json"});
  EXPECT_EQ(watched.exit_code, 0) << watched.err << (*farm)->Logs();
  // The kills did hit running tasks: some needed a second attempt.
  EXPECT_GE(ExpectEveryTaskOnceOk(watched.out, kTasks), 2);
  CommandResult status = (*farm)->Qfarm({"status", job});
  EXPECT_THAT(status.out, ::testing::HasSubstr("done"));
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

// The coordinator is killed with SIGKILL mid-batch and restarted on the same
// data dir: the client's map reconnects, and every task reports exactly one
// result.
TEST(ChaosTest, CoordinatorRestartLosesNothing) {
  auto farm = LocalFarm::Start({{.id = "w1", .slots = 8},
                                {.id = "w2", .slots = 8},
                                {.id = "w3", .slots = 8}});
  ASSERT_TRUE(farm.ok()) << farm.status();
  constexpr int kTasks = 3000;
  auto map = Subprocess::Start(
      {BinPath("qfarm"), "--coordinator=" + (*farm)->address(), "map",
       "sleep:10ms", absl::StrCat("--repeat=", kTasks), "--output=json"},
      {.stderr_path = (*farm)->log_dir() + "/map.err"});
  ASSERT_TRUE(map.ok());
  // Results are flowing: the job is journaled and running.
  absl::StatusOr<std::string> first = (*map)->ReadLine(absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status() << (*farm)->Logs();
  ASSERT_TRUE((*farm)->RestartCoordinator().ok()) << (*farm)->Logs();
  const std::string rest = (*map)->ReadAll();
  absl::StatusOr<int> code = (*map)->WaitFor(absl::Seconds(120));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << (*farm)->Logs();
  ExpectEveryTaskOnceOk(*first + "\n" + rest, kTasks);
  // A watch from a new client gets the whole job again, once each.
  CommandResult watched = (*farm)->Qfarm({"watch", "1", "--output=json"});
  EXPECT_EQ(watched.exit_code, 0) << watched.err;
  ExpectEveryTaskOnceOk(watched.out, kTasks);
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

// A frozen worker (SIGSTOP) keeps its TCP connection but stops
// heartbeating: it is declared dead and its tasks run elsewhere; after
// SIGCONT its late results are dropped and it serves again.
TEST(ChaosTest, FrozenWorkerIsDetectedAndItsLateResultsDropped) {
  auto farm =
      LocalFarm::Start({{.id = "w1", .slots = 4}, {.id = "w2", .slots = 4}},
                       {"--heartbeat-timeout=1s"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  constexpr int kTasks = 400;
  CommandResult submitted = (*farm)->Qfarm(
      {"submit", "sleep:50ms", absl::StrCat("--repeat=", kTasks)});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job(absl::StripAsciiWhitespace(submitted.out));
  Subprocess* frozen = (*farm)->worker("w1");
  frozen->Signal(SIGSTOP);
  CommandResult watched = (*farm)->Qfarm({"watch", job, "--output=json"});
  EXPECT_EQ(watched.exit_code, 0) << watched.err << (*farm)->Logs();
  // Tasks w1 held were run again, by w2, with a higher attempt.
  EXPECT_GE(ExpectEveryTaskOnceOk(watched.out, kTasks), 2);
  frozen->Signal(SIGCONT);
  // It reconnects (its old stream was ended) and takes the next job.
  ASSERT_TRUE((*farm)->WaitForWorkers(2, absl::Seconds(30)).ok());
  CommandResult status = (*farm)->Qfarm({"status", job});
  EXPECT_THAT(status.out,
              ::testing::HasSubstr(absl::StrCat(kTasks, " ok, 0 failed")));
  CommandResult next = (*farm)->Qfarm({"map", "echo:x", "--repeat=50"});
  EXPECT_EQ(next.exit_code, 0) << next.err;
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

// A journal damaged on disk stops the coordinator at start-up with a clear
// message; it never starts on a silently shortened history.
TEST(ChaosTest, TruncatedJournalIsReportedAtStartUp) {
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
