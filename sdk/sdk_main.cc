// qfarm::RunWorkerMain() (qfarm/worker.h): a worker of the user's kinds,
// or the qfarm command line with them.
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "bench/bench.h"
#include "cli/cli.h"
#include "common/process.h"
#include "qfarm/worker.h"
#include "worker/worker_main.h"

namespace qfarm {
namespace {

// The commands of the qfarm command line that this program runs.
constexpr const char* kCommands[] = {"map",    "submit",  "watch", "status",
                                     "cancel", "workers", "help",  "bench"};

// The first argument that is not a flag, when it is a command word. Flags
// before it count as `--name=value` or boolean (as `qfarm` reads them).
std::optional<std::string> CommandWord(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg.size() > 1 && arg[0] == '-') continue;
    for (const char* command : kCommands) {
      if (arg == command) return arg;
    }
    break;
  }
  return std::nullopt;
}

std::string Basename(const char* path) {
  const std::string full = path != nullptr ? path : "qfarm-worker";
  const size_t slash = full.rfind('/');
  return slash == std::string::npos ? full : full.substr(slash + 1);
}

}  // namespace

int RunWorkerMain(int argc, char** argv, const Kinds& kinds) {
  const std::string program = Basename(argc > 0 ? argv[0] : nullptr);
  const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  if (!kinds.status().ok()) {
    std::cerr << program << ": " << kinds.status().message() << "\n";
    return kExitUsage;
  }
  const bench::BenchOptions bench_options = {.kinds = &kinds,
                                             .worker_binary = SelfPath()};
  const client::BenchCommand bench = [&bench_options](
                                         const std::vector<std::string>& rest,
                                         const client::CliStreams& io) {
    return bench::RunBenchCommand(rest, *io.out, *io.err, bench_options);
  };
  if (CommandWord(args)) return client::RunCliMain(args, bench, &kinds);
  return worker::RunWorkerMain(args, kinds, program);
}

}  // namespace qfarm
