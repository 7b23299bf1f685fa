// qfarm-bench: `qfarm bench`, which execs it (see `qfarm bench --help`).
// Runs one workload every way and prints the comparison.
#include <iostream>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "common/process.h"

int main(int argc, char** argv) {
  qfarm::TurnOffMutexDeadlockDetection();
  std::ios::sync_with_stdio(false);
  const int code = qfarm::bench::RunBenchCommand(
      std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
  std::cout.flush();
  return code;
}
