// qfarm-worker: dials a coordinator and runs the tasks it is sent, in one
// mode (serial, thread, async or auto). Reconnects with backoff while the
// coordinator is away; on SIGTERM or SIGINT stops taking work, lets running
// tasks finish within --drain-grace, and exits 0.
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>

#include "common/flags.h"
#include "worker/run_worker.h"

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

std::string DefaultCoordinator() {
  const char* env = std::getenv("QFARM_COORDINATOR");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
}

}  // namespace

int main(int argc, char** argv) {
  qfarm::worker::WorkerCommand command;
  qfarm::worker::WorkerOptions& options = command.options;
  options.coordinator = DefaultCoordinator();
  qfarm::FlagSet flags(kUsage);
  flags.String("coordinator", &options.coordinator,
               "HOST:PORT of the coordinator; defaults to $QFARM_COORDINATOR, "
               "then 127.0.0.1:50051");
  flags.String("mode", &command.mode, "serial, thread, async or auto");
  flags.Int("slots", &command.slots,
            "tasks run at once (serial: always 1); 0 means 4 for thread and "
            "1000 for async and auto",
            0, 1'000'000);
  flags.String("id", &options.id,
               "worker name shown in results; default HOST-PID");
  flags.Duration("drain-grace", &options.drain_grace,
                 "on SIGTERM, how long running tasks may finish before they "
                 "are handed back");
  flags.String("tls-ca", &command.tls.ca,
               "PEM CA bundle: connect with TLS, checking the coordinator's "
               "certificate against it");
  flags.String("tls-cert", &command.tls.cert,
               "PEM client certificate for mutual TLS (with --tls-key)");
  flags.String("tls-key", &command.tls.key, "PEM private key of --tls-cert");
  flags.String("token-file", &command.token_file,
               "file holding the worker token the coordinator expects");
  flags.String("metrics-listen", &command.metrics_listen,
               "HOST:PORT to serve Prometheus metrics on (/metrics); "
               "empty: none");
  auto args = flags.Parse(argc, argv);
  if (!args.ok()) {
    std::cerr << "qfarm-worker: " << args.status().message() << "\n";
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (!args->empty()) {
    std::cerr << "qfarm-worker: unexpected argument \"" << (*args)[0]
              << "\" (see --help)\n";
    return 2;
  }
  return qfarm::worker::RunWorker(std::move(command));
}
