#include "coordinator/run_coordinator.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth.h"
#include "common/byte_size.h"
#include "common/logging.h"
#include "common/process.h"
#include "common/signals.h"
#include "common/task_spec.h"

namespace qfarm::coordinator {
namespace {

// Fills the tokens and the journal's place into `command.options`.
// INVALID_ARGUMENT for a bad command line; another code when the data
// directory cannot be made.
absl::Status Complete(CoordinatorCommand& command) {
  CoordinatorOptions& options = command.options;
  for (auto [path, token] :
       {std::pair{&command.client_token_file, &options.client_token},
        std::pair{&command.worker_token_file, &options.worker_token}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> read = ReadTokenFile(*path);
    if (!read.ok()) return absl::InvalidArgumentError(read.status().message());
    *token = *std::move(read);
  }
  if (command.journal_sync != "full" && command.journal_sync != "normal") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--journal-sync=", command.journal_sync, ": expected full or normal"));
  }
  if (options.scheduler.heartbeat_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--heartbeat-timeout must be positive");
  }
  if (options.scheduler.retain_finished < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--retain-finished must not be negative (0: release finished jobs at "
        "once; inf: keep them)");
  }
  absl::StatusOr<uint64_t> retain_bytes =
      ParseByteSize(command.retain_finished_bytes);
  if (!retain_bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--retain-finished-bytes=", retain_bytes.status().message()));
  }
  options.scheduler.retain_finished_bytes = *retain_bytes;
  for (absl::string_view kind :
       absl::StrSplit(command.kinds, ',', absl::SkipWhitespace())) {
    kind = absl::StripAsciiWhitespace(kind);
    if (absl::Status valid = ValidateKindName(kind); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--kinds: ", valid.message()));
    }
    options.scheduler.accepted_kinds.emplace_back(kind);
  }
  if (command.ephemeral) return absl::OkStatus();
  if (command.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "--data-dir is empty (use --ephemeral for no journal)");
  }
  std::error_code error;
  std::filesystem::create_directories(command.data_dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("--data-dir=", command.data_dir, ": ", error.message()));
  }
  options.data_dir = command.data_dir;
  options.journal.sync = command.journal_sync == "full" ? JournalSync::kFull
                                                        : JournalSync::kNormal;
  return absl::OkStatus();
}

}  // namespace

int RunCoordinator(CoordinatorCommand command) {
  TurnOffMutexDeadlockDetection();
  BlockTerminationSignals();
  if (absl::Status complete = Complete(command); !complete.ok()) {
    std::cerr << "qfarm-coordinator: " << complete.message() << "\n";
    return complete.code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                                 : kExitFailed;
  }
  CoordinatorOptions& options = command.options;
  std::atomic<bool> fatal{false};
  options.on_fatal = [&fatal](const absl::Status&) {
    fatal = true;
    kill(getpid(), SIGTERM);  // Handled below like an operator's SIGTERM.
  };
  auto server = CoordinatorServer::Start(options);
  if (!server.ok()) {
    std::cerr << "qfarm-coordinator: " << server.status().message() << "\n";
    const absl::StatusCode code = server.status().code();
    return code == absl::StatusCode::kInvalidArgument ||
                   code == absl::StatusCode::kNotFound
               ? kExitUsage
               : kExitFailed;
  }
  if ((*server)->recovered_jobs() > 0) {
    QFARM_LOG(INFO) << "recovered " << (*server)->recovered_jobs()
                    << " jobs from " << options.data_dir;
  }
  std::cout << "qfarm-coordinator listening on " << (*server)->address()
            << std::endl;
  if ((*server)->metrics_port() > 0) {
    const std::string& metrics = options.metrics_listen;
    std::cout << "qfarm-coordinator metrics on "
              << metrics.substr(0, metrics.rfind(':')) << ":"
              << (*server)->metrics_port() << std::endl;
  }
  if ((*server)->health_port() > 0) {
    const std::string& health = options.health_listen;
    std::cout << "qfarm-coordinator health on "
              << health.substr(0, health.rfind(':')) << ":"
              << (*server)->health_port() << std::endl;
  }
  const int sig = WaitForTerminationSignal();
  QFARM_LOG(INFO) << "signal " << sig << ": shutting down";
  (*server)->Shutdown();
  QFARM_LOG(INFO) << "stopped";
  return fatal ? kExitFailed : 0;
}

}  // namespace qfarm::coordinator
