// qfarm-chaos: the chaos loop (tests/chaos_harness.h). Runs iterations with
// seeds SEED, SEED+1, ... (one scenario each, in turn) until the time or the
// count is reached, prints one line per iteration and the totals, and exits
// 1 if any iteration failed. A failed iteration prints its timeline, what
// the wire check found, where its logs were kept and how to replay it.
//
//   qfarm-chaos --seconds=120            what CI runs (scripts/test.sh)
//   qfarm-chaos --seed=42 --iterations=1 replay one iteration
//
// SIGINT or SIGTERM ends the loop after the iteration in progress, which
// stops the processes it started.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/signals.h"
#include "tests/chaos_harness.h"

namespace {

constexpr char kUsage[] =
    "usage: qfarm-chaos [--seconds=N | --minutes=N] [--iterations=N] "
    "[--seed=S]\n"
    "\n"
    "Kills and freezes workers and the coordinator while jobs run, and\n"
    "checks every result at the wire: nothing lost, nothing duplicated,\n"
    "every value right. Starts no iteration after the time is up.";

}  // namespace

ABSL_FLAG(int64_t, seconds, 120, "time for the loop");
ABSL_FLAG(int64_t, minutes, 0, "time for the loop (overrides --seconds)");
ABSL_FLAG(int64_t, iterations, 0, "most iterations; 0: no bound");
ABSL_FLAG(int64_t, seed, -1, "first iteration's seed; -1: from the clock");
ABSL_FLAG(std::string, keep_logs, "/tmp",
          "where a failed iteration's logs and journal are copied");
ABSL_FLAG(bool, verbose, false, "print every iteration's timeline");

int main(int argc, char** argv) {
  using qfarm::Flag;
  const qfarm::CommandLine flags(
      kUsage, {Flag(FLAGS_seconds, 0, int64_t{1} << 30),
               Flag(FLAGS_minutes, 0, int64_t{1} << 24),
               Flag(FLAGS_iterations, 0, int64_t{1} << 40),
               Flag(FLAGS_seed, -1, INT64_MAX), Flag(FLAGS_keep_logs),
               Flag(FLAGS_verbose)});
  if (std::optional<int> exit =
          flags.ParseFlagsOnly(argc, argv, "qfarm-chaos")) {
    return *exit;
  }
  int64_t seconds = absl::GetFlag(FLAGS_seconds);
  const int64_t minutes = absl::GetFlag(FLAGS_minutes);
  const int64_t iterations = absl::GetFlag(FLAGS_iterations);
  int64_t seed = absl::GetFlag(FLAGS_seed);
  const std::string keep_logs = absl::GetFlag(FLAGS_keep_logs);
  const bool verbose = absl::GetFlag(FLAGS_verbose);
  if (minutes > 0) seconds = minutes * 60;
  if (seed < 0) {
    seed = std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() %
           1'000'000'000;
  }
  std::cout << "chaos: first seed " << seed << ", " << seconds << " s"
            << (iterations > 0
                    ? absl::StrCat(", at most ", iterations, " iterations")
                    : "")
            << std::endl;

  // Blocked in every thread; the children start with none blocked.
  qfarm::BlockTerminationSignals();
  static std::atomic<bool> interrupted{false};
  std::thread([] {
    qfarm::WaitForTerminationSignal();
    interrupted = true;
    std::cout << "chaos: interrupted; stopping after this iteration"
              << std::endl;
  }).detach();
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  qfarm::testing::ChaosCounts totals;
  int64_t passed = 0;
  int64_t failed = 0;
  std::vector<uint64_t> failed_seeds;
  for (int64_t i = 0; iterations == 0 || i < iterations; ++i) {
    if ((i > 0 && absl::Now() >= end) || interrupted) break;
    const uint64_t s = static_cast<uint64_t>(seed + i);
    const qfarm::testing::ChaosPlan plan = qfarm::testing::MakeChaosPlan(s);
    std::cout << "chaos #" << i + 1 << " " << qfarm::testing::DescribePlan(plan)
              << std::endl;
    qfarm::testing::IterationOutcome outcome =
        qfarm::testing::RunChaosIteration(plan, {.keep_logs_under = keep_logs});
    totals.Add(outcome.counts);
    const auto& c = outcome.counts;
    std::cout << "  " << (outcome.ok ? "ok" : "FAILED") << " in "
              << absl::FormatDuration(
                     absl::Trunc(outcome.elapsed, absl::Milliseconds(10)))
              << ": " << c.tasks << " tasks, " << c.results_read
              << " results read, " << c.lost << " lost, " << c.duplicated
              << " duplicated, " << c.wrong << " wrong"
              << (c.skipped > 0 ? absl::StrCat(", ", c.skipped,
                                               " events skipped (jobs done)")
                                : "")
              << std::endl;
    if (outcome.ok) {
      ++passed;
      if (verbose) std::cout << outcome.timeline << std::flush;
    } else {
      ++failed;
      failed_seeds.push_back(s);
      std::cout << "  timeline:\n"
                << outcome.timeline << "  failure:\n"
                << outcome.failure << "  replay: scripts/chaos.sh --seed=" << s
                << " --iterations=1" << std::endl;
    }
  }
  const int64_t elapsed = absl::ToInt64Seconds(absl::Now() - start);
  std::cout << "chaos: worker kills " << totals.worker_kills_total()
            << " (serial " << totals.worker_kills[0] << ", thread "
            << totals.worker_kills[1] << ", async " << totals.worker_kills[2]
            << ", auto " << totals.worker_kills[3] << "); coordinator kills "
            << totals.coordinator_kills << " (right after SubmitJob's answer "
            << totals.kills_after_submit_ack
            << ", right after a Session's acceptance "
            << totals.kills_after_session_ack << ", with a worker "
            << totals.kills_with_worker << "); freezes: workers "
            << totals.worker_freezes << ", coordinator "
            << totals.coordinator_freezes << "\n"
            << "chaos: " << totals.tasks << " tasks, " << totals.results_read
            << " results read: " << totals.lost << " lost, "
            << totals.duplicated << " duplicated, " << totals.wrong
            << " wrong\n";
  for (uint64_t s : failed_seeds) {
    std::cout << "chaos: failed seed " << s
              << " (replay: scripts/chaos.sh --seed=" << s
              << " --iterations=1)\n";
  }
  std::cout << "chaos: " << passed << " iterations passed, " << failed
            << " failed in " << elapsed << " s" << std::endl;
  return failed == 0 && passed > 0 ? 0 : 1;
}
