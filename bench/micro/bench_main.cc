// main() of the microbenchmarks. Debian's Abseil is built without NDEBUG,
// which turns on Mutex deadlock detection (a lock graph updated on every
// lock); qfarm's binaries turn it off, and so do the benchmarks, which
// measure qfarm's code.
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
