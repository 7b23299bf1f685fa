// qfarm-worker: dials a coordinator and runs the tasks it is sent, in one
// mode (serial, thread, async or auto). Reconnects with backoff while the
// coordinator is away; on SIGTERM or SIGINT stops taking work, lets running
// tasks finish within --drain-grace, and exits 0.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/auth.h"
#include "common/flags.h"
#include "common/grpc_options.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "worker/worker_link.h"
#include "worker/worker_metrics.h"

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

std::string DefaultId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] ? host : "worker", "-", getpid());
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which turns on Mutex deadlock
  // detection: a lock graph updated on every lock. As in qfarm's main(),
  // tests keep it; the binary runs like a release build.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  qfarm::BlockTerminationSignals();
  std::string coordinator = DefaultCoordinator();
  std::string mode_text = "thread";
  int64_t slots = 0;
  std::string id;
  absl::Duration drain_grace = absl::Seconds(10);
  qfarm::FlagSet flags(kUsage);
  flags.String("coordinator", &coordinator,
               "HOST:PORT of the coordinator; defaults to $QFARM_COORDINATOR, "
               "then 127.0.0.1:50051");
  flags.String("mode", &mode_text, "serial, thread, async or auto");
  flags.Int("slots", &slots,
            "tasks run at once (serial: always 1); 0 means 4 for thread and "
            "1000 for async and auto",
            0, 1'000'000);
  flags.String("id", &id, "worker name shown in results; default HOST-PID");
  flags.Duration("drain-grace", &drain_grace,
                 "on SIGTERM, how long running tasks may finish before they "
                 "are handed back");
  qfarm::TlsFiles tls;
  flags.String("tls-ca", &tls.ca,
               "PEM CA bundle: connect with TLS, checking the coordinator's "
               "certificate against it");
  flags.String("tls-cert", &tls.cert,
               "PEM client certificate for mutual TLS (with --tls-key)");
  flags.String("tls-key", &tls.key, "PEM private key of --tls-cert");
  std::string token_file;
  flags.String("token-file", &token_file,
               "file holding the worker token the coordinator expects");
  std::string metrics_listen;
  flags.String("metrics-listen", &metrics_listen,
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
  auto mode = qfarm::worker::ParseMode(mode_text);
  if (!mode.ok()) {
    std::cerr << "qfarm-worker: --mode: " << mode.status().message() << "\n";
    return 2;
  }
  if (*mode == qfarm::worker::Mode::kSerial) {
    slots = 1;
  } else if (slots == 0) {
    slots = *mode == qfarm::worker::Mode::kAsync ||
                    *mode == qfarm::worker::Mode::kAuto
                ? 1000
                : 4;
  }

  auto credentials = qfarm::MakeChannelCredentials(tls);
  if (!credentials.ok()) {
    std::cerr << "qfarm-worker: " << credentials.status().message() << "\n";
    return 2;
  }
  std::string token;
  if (!token_file.empty()) {
    auto read = qfarm::ReadTokenFile(token_file);
    if (!read.ok()) {
      std::cerr << "qfarm-worker: " << read.status().message() << "\n";
      return 2;
    }
    token = *std::move(read);
  }

  qfarm::worker::WorkerOptions options;
  options.credentials = *credentials;
  options.token = token;
  options.coordinator = coordinator;
  options.mode = *mode;
  options.slots = static_cast<int>(slots);
  options.id = id.empty() ? DefaultId() : id;
  options.drain_grace = drain_grace;
  qfarm::worker::WorkerLink link(options);
  std::unique_ptr<qfarm::MetricsServer> metrics;
  if (!metrics_listen.empty()) {
    auto started = qfarm::MetricsServer::Start(
        metrics_listen, std::make_shared<qfarm::worker::WorkerMetrics>(&link));
    if (!started.ok()) {
      std::cerr << "qfarm-worker: " << started.status().message() << "\n";
      return 1;
    }
    metrics = *std::move(started);
    std::cout << "qfarm-worker metrics on "
              << metrics_listen.substr(0, metrics_listen.rfind(':')) << ":"
              << metrics->port() << std::endl;
  }
  QFARM_LOG(INFO) << "worker " << options.id << " (mode " << mode_text << ", "
                  << slots << " slots) serving " << coordinator;

  std::thread signals([&link] {
    const int sig = qfarm::WaitForTerminationSignal();
    QFARM_LOG(INFO) << "signal " << sig << ": draining";
    link.Stop();
  });
  link.Run();
  // Run() returns only after Stop(), which only the signal thread calls.
  signals.join();
  QFARM_LOG(INFO) << "stopped";
  return 0;
}
