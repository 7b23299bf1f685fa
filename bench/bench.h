// `qfarm bench`: runs one workload every way -- on local pools in this
// process, through farms of worker processes it starts, and optionally as
// the seed's own Python methods -- and prints one comparison table (or
// JSON, CSV, and an SVG chart). See `qfarm bench --help`.
//
//   int code = RunBenchCommand({"--workload=seed", "--quick"}, std::cout,
//                              std::cerr);
//
// The farm methods start qfarm-coordinator and qfarm-worker from the
// directory of the running binary (or $QFARM_BIN_DIR, for a binary built
// elsewhere with the SDK) and stop them by PID afterwards.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "qfarm/kinds.h"

namespace qfarm::bench {

// What the program running the bench brings: a worker binary built with the
// SDK (qfarm/worker.h) runs its own kinds.
struct BenchOptions {
  // The kinds local methods run; null: the built-in kinds.
  const Kinds* kinds = nullptr;
  // The binary farm methods start as workers; empty: qfarm-worker beside
  // the running binary.
  std::string worker_binary;
};

// `args` are the command's arguments without the word "bench". Returns the
// exit code: 0 when every method that ran finished every task OK, 1 when
// one did not, 2 for usage errors.
// The report goes to `out`, errors and progress to `err`. Parses into the
// process's Abseil flags (defined in bench.cc): one call at a time per
// process.
int RunBenchCommand(const std::vector<std::string>& args, std::ostream& out,
                    std::ostream& err, const BenchOptions& options = {});

}  // namespace qfarm::bench
