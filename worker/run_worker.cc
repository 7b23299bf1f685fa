#include "worker/run_worker.h"

#include <unistd.h>

#include <iostream>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/auth.h"
#include "common/health_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/process.h"
#include "common/signals.h"
#include "worker/worker_metrics.h"

namespace qfarm::worker {
namespace {

std::string DefaultId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] ? host : "worker", "-", getpid());
}

// Fills mode, slots, credentials and token into `command.options`;
// INVALID_ARGUMENT for a bad command line.
absl::Status Complete(WorkerCommand& command) {
  WorkerOptions& options = command.options;
  absl::StatusOr<executors::Mode> mode = executors::ParseMode(command.mode);
  if (!mode.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mode: ", mode.status().message()));
  }
  options.mode = *mode;
  options.slots = command.slots == 0 || *mode == executors::Mode::kSerial
                      ? executors::DefaultSlots(*mode, executors::Pool::kWorker)
                      : static_cast<int>(command.slots);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(command.tls);
  if (!credentials.ok()) {
    return absl::InvalidArgumentError(credentials.status().message());
  }
  options.credentials = *credentials;
  if (!command.token_file.empty()) {
    absl::StatusOr<std::string> read = ReadTokenFile(command.token_file);
    if (!read.ok()) return absl::InvalidArgumentError(read.status().message());
    options.token = *std::move(read);
  }
  if (options.id.empty()) options.id = DefaultId();
  if (command.unreachable_grace <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--unreachable-grace must be positive");
  }
  return absl::OkStatus();
}

}  // namespace

int RunWorker(WorkerCommand command) {
  TurnOffMutexDeadlockDetection();
  BlockTerminationSignals();
  if (absl::Status complete = Complete(command); !complete.ok()) {
    std::cerr << "qfarm-worker: " << complete.message() << "\n";
    return kExitUsage;
  }
  Liveness liveness(command.options.clock,
                    {.unreachable_grace = command.unreachable_grace});
  if (!command.health_listen.empty()) command.options.liveness = &liveness;
  const WorkerOptions& options = command.options;
  WorkerLink link(options);
  std::unique_ptr<MetricsServer> metrics;
  if (!command.metrics_listen.empty()) {
    auto started = MetricsServer::Start(command.metrics_listen,
                                        std::make_shared<WorkerMetrics>(&link));
    if (!started.ok()) {
      std::cerr << "qfarm-worker: " << started.status().message() << "\n";
      return kExitFailed;
    }
    metrics = *std::move(started);
    const std::string& listen = command.metrics_listen;
    std::cout << "qfarm-worker metrics on "
              << listen.substr(0, listen.rfind(':')) << ":" << metrics->port()
              << std::endl;
  }
  std::unique_ptr<HealthServer> health;
  if (!command.health_listen.empty()) {
    auto started = HealthServer::Start(
        command.health_listen, [&liveness] { return liveness.Check(); });
    if (!started.ok()) {
      std::cerr << "qfarm-worker: --health-listen: "
                << started.status().message() << "\n";
      return started.status().code() == absl::StatusCode::kInvalidArgument
                 ? kExitUsage
                 : kExitFailed;
    }
    health = *std::move(started);
    std::cout << "qfarm-worker health on " << health->address() << std::endl;
  }
  QFARM_LOG(INFO) << "worker " << options.id << " (mode " << command.mode
                  << ", " << options.slots << " slots) serving "
                  << options.coordinator;
  std::thread signals([&link] {
    const int sig = WaitForTerminationSignal();
    QFARM_LOG(INFO) << "signal " << sig << ": draining";
    link.Stop();
  });
  link.Run();
  // Run() returns only after Stop(), which only the signal thread calls.
  signals.join();
  QFARM_LOG(INFO) << "stopped";
  return kExitOk;
}

}  // namespace qfarm::worker
