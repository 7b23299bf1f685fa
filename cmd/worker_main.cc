// qfarm-worker: dials a coordinator and runs the tasks it is sent, in one
// mode (serial, thread, async or auto). Reconnects with backoff while the
// coordinator is away; on SIGTERM or SIGINT stops taking work, lets running
// tasks finish within --drain-grace, and exits 0.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "common/flags.h"
#include "worker/run_worker.h"

namespace {

std::string DefaultCoordinator() {
  const char* env = std::getenv("QFARM_COORDINATOR");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
}

}  // namespace

using qfarm::worker::WorkerCommand;

// Defaults come from WorkerCommand, so they are stated once.
ABSL_FLAG(std::string, coordinator, DefaultCoordinator(),
          "HOST:PORT of the coordinator; defaults to $QFARM_COORDINATOR, then "
          "127.0.0.1:50051");
ABSL_FLAG(std::string, mode, WorkerCommand().mode,
          "serial, thread, async or auto");
ABSL_FLAG(int64_t, slots, WorkerCommand().slots,
          "tasks run at once (serial: always 1); 0 means 4 for thread and 1000 "
          "for async and auto");
ABSL_FLAG(std::string, id, "",
          "worker name shown in results; default HOST-PID");
ABSL_FLAG(absl::Duration, drain_grace, WorkerCommand().options.drain_grace,
          "on SIGTERM, how long running tasks may finish before they are "
          "handed back");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle: connect with TLS, checking the coordinator's "
          "certificate against it");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate for mutual TLS (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, token_file, "",
          "file holding the worker token the coordinator expects");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus metrics on (/metrics); empty: none");

namespace {

constexpr char kUsage[] =
    "usage: qfarm-worker [--coordinator=HOST:PORT] [--mode=MODE] [--slots=N]"
    " [--id=NAME]\n"
    "\n"
    "Runs tasks for a qfarm coordinator. Modes:\n"
    "  serial  one task at a time\n"
    "  thread  N tasks at once on N threads (--slots)\n"
    "  async   up to N tasks in flight on one event-loop thread (--slots)\n"
    "  auto    sleep, http and echo on an event loop, cpu on a pool sized to\n"
    "          the cores; up to N tasks in flight in all (--slots)";

// The command the flags ask for.
WorkerCommand FromFlags() {
  WorkerCommand command;
  command.options.coordinator = absl::GetFlag(FLAGS_coordinator);
  command.options.id = absl::GetFlag(FLAGS_id);
  command.options.drain_grace = absl::GetFlag(FLAGS_drain_grace);
  command.mode = absl::GetFlag(FLAGS_mode);
  command.slots = absl::GetFlag(FLAGS_slots);
  command.tls = {.cert = absl::GetFlag(FLAGS_tls_cert),
                 .key = absl::GetFlag(FLAGS_tls_key),
                 .ca = absl::GetFlag(FLAGS_tls_ca)};
  command.token_file = absl::GetFlag(FLAGS_token_file);
  command.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  return command;
}

}  // namespace

int main(int argc, char** argv) {
  using qfarm::Flag;
  const qfarm::CommandLine flags(
      kUsage,
      {Flag(FLAGS_coordinator), Flag(FLAGS_mode),
       Flag(FLAGS_slots, 0, 1'000'000), Flag(FLAGS_id), Flag(FLAGS_drain_grace),
       Flag(FLAGS_tls_ca), Flag(FLAGS_tls_cert), Flag(FLAGS_tls_key),
       Flag(FLAGS_token_file), Flag(FLAGS_metrics_listen)});
  if (std::optional<int> exit =
          flags.ParseFlagsOnly(argc, argv, "qfarm-worker")) {
    return *exit;
  }
  return qfarm::worker::RunWorker(FromFlags());
}
