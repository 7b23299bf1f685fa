#include "worker/worker_main.h"

#include <cstdint>
#include <iostream>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/abbreviate.h"
#include "common/common_flags.h"
#include "common/flags.h"
#include "common/process.h"
#include "worker/run_worker.h"

// --coordinator, --mode, --slots, --tls-*, --token-file:
// common/common_flags.h. Defaults come from WorkerCommand, so they are
// stated once.
ABSL_FLAG(std::string, id, "",
          "worker name shown in results; default HOST-PID");
ABSL_FLAG(absl::Duration, drain_grace,
          qfarm::worker::WorkerCommand().options.drain_grace,
          "on SIGTERM, how long running tasks may finish before they are "
          "handed back");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus metrics on (/metrics); empty: none");
ABSL_FLAG(std::string, health_listen, "",
          "HOST:PORT to serve only the gRPC health service on, in "
          "plaintext, for a liveness probe: NOT_SERVING when the worker's "
          "loop has not turned for 60s or it has had no coordinator for "
          "--unreachable-grace; empty: none");
ABSL_FLAG(absl::Duration, unreachable_grace,
          qfarm::worker::WorkerCommand().unreachable_grace,
          "with --health-listen: how long the worker may be without a "
          "coordinator before its health service reports NOT_SERVING");

namespace qfarm::worker {
namespace {

std::vector<FlagSpec> AllFlags() {
  std::vector<FlagSpec> flags = {
      CoordinatorFlag(), Flag(FLAGS_mode, "serial, thread, async or auto"),
      Flag(FLAGS_slots, 0, 1'000'000,
           "tasks run at once (serial: always 1); 0 means 4 for thread and "
           "1000 for async and auto"),
      Flag(FLAGS_id), Flag(FLAGS_drain_grace)};
  for (FlagSpec& flag : ConnectionFlags("worker")) {
    flags.push_back(std::move(flag));
  }
  flags.push_back(Flag(FLAGS_metrics_listen));
  flags.push_back(Flag(FLAGS_health_listen));
  flags.push_back(Flag(FLAGS_unreachable_grace));
  return flags;
}

const CommandLine& Flags(const std::string& program) {
  static const auto* const flags = new CommandLine(
      absl::StrCat(
          "usage: ", program,
          " [--coordinator=HOST:PORT] [--mode=MODE] [--slots=N] [--id=NAME]\n"
          "\n"
          "Runs tasks for a qfarm coordinator. Modes:\n"
          "  serial  one task at a time\n"
          "  thread  N tasks at once on N threads (--slots)\n"
          "  async   up to N tasks in flight on one event-loop thread "
          "(--slots)\n"
          "  auto    sleep, http, echo and kinds with a coroutine form on an\n"
          "          event loop, cpu and other kinds on a pool sized to the\n"
          "          cores; up to N tasks in flight in all (--slots)"),
      AllFlags());
  return *flags;
}

// The command the flags ask for.
WorkerCommand FromFlags(const Kinds& kinds) {
  WorkerCommand command;
  command.options.coordinator = absl::GetFlag(FLAGS_coordinator);
  if (command.options.coordinator.empty()) {
    command.options.coordinator = DefaultCoordinator();
  }
  command.options.id = absl::GetFlag(FLAGS_id);
  command.options.drain_grace = absl::GetFlag(FLAGS_drain_grace);
  command.options.kinds = &kinds;
  command.mode = absl::GetFlag(FLAGS_mode);
  command.slots = absl::GetFlag(FLAGS_slots);
  command.tls = {.cert = absl::GetFlag(FLAGS_tls_cert),
                 .key = absl::GetFlag(FLAGS_tls_key),
                 .ca = absl::GetFlag(FLAGS_tls_ca)};
  command.token_file = absl::GetFlag(FLAGS_token_file);
  command.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  command.health_listen = absl::GetFlag(FLAGS_health_listen);
  command.unreachable_grace = absl::GetFlag(FLAGS_unreachable_grace);
  return command;
}

}  // namespace

std::string WorkerHelp(const std::string& program) {
  return Flags(program).Help();
}

int RunWorkerMain(const std::vector<std::string>& args, const Kinds& kinds,
                  const std::string& program) {
  const CommandLine& flags = Flags(program);
  absl::StatusOr<ParsedArgs> parsed = flags.Parse(args);
  if (!parsed.ok()) {
    std::cerr << program << ": " << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (parsed->help) {
    std::cout << flags.Help()
              << "Kinds offered: " << absl::StrJoin(kinds.names(), ", ")
              << "\n";
    return kExitOk;
  }
  if (!parsed->positional.empty()) {
    std::cerr << program << ": unexpected argument \""
              << Abbreviate(parsed->positional[0]) << "\" (see --help)\n";
    return kExitUsage;
  }
  if (!kinds.status().ok()) {
    std::cerr << program << ": " << kinds.status().message() << "\n";
    return kExitUsage;
  }
  if (kinds.empty()) {
    std::cerr << program << ": the worker offers no kind\n";
    return kExitUsage;
  }
  return RunWorker(FromFlags(kinds));
}

}  // namespace qfarm::worker
