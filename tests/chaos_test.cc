// Nothing lost: workers killed with SIGKILL mid-batch, and every task still
// reports exactly one successful result.
#include <signal.h>

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

}  // namespace
}  // namespace qfarm::testing
