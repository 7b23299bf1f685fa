// qfarm-bench: `qfarm bench`, which execs it (see `qfarm bench --help`).
// Runs one workload every way and prints the comparison.
#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "bench/bench.h"

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which turns on Mutex deadlock
  // detection: a lock graph updated on every lock. Tests keep it; the
  // binary runs like a release build.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::ios::sync_with_stdio(false);
  const int code = qfarm::bench::RunBenchCommand(
      std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
  std::cout.flush();
  return code;
}
