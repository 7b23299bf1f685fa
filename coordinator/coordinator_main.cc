// qfarm-coordinator: accepts jobs from clients and spreads their tasks over
// the workers that dial in. Prints "qfarm-coordinator listening on HOST:PORT"
// as its first line on stdout; stops cleanly on SIGINT or SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/auth.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/signals.h"
#include "coordinator/coordinator_server.h"

namespace {

constexpr char kUsage[] =
    "usage: qfarm-coordinator [--listen=HOST:PORT] [flags]\n"
    "\n"
    "Accepts jobs from clients (qfarm) and dispatches their tasks to the\n"
    "workers (qfarm-worker) that connect to it. Prints\n"
    "\"qfarm-coordinator listening on HOST:PORT\" first, with the real port\n"
    "when 0 was asked (then \"qfarm-coordinator metrics on HOST:PORT\" with\n"
    "--metrics-listen); stops on SIGINT or SIGTERM.";

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which turns on Mutex deadlock
  // detection: a lock graph updated on every lock. As in qfarm's main(),
  // tests keep it; the binary runs like a release build.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  qfarm::BlockTerminationSignals();
  std::string listen = "0.0.0.0:50051";
  int64_t max_queued = 1'000'000;
  int64_t max_attempts = 3;
  qfarm::FlagSet flags(kUsage);
  flags.String("listen", &listen,
               "HOST:PORT to serve clients and workers on; port 0 picks a "
               "free one");
  flags.Int("max-queued", &max_queued,
            "most tasks waiting for a worker, across all jobs; a job that "
            "does not fit is refused with RESOURCE_EXHAUSTED",
            1, int64_t{1} << 32);
  flags.Int("max-attempts", &max_attempts,
            "attempts for tasks that do not set their own", 1, 100);
  std::string data_dir = "./qfarm-data";
  bool ephemeral = false;
  std::string journal_sync = "full";
  absl::Duration heartbeat_timeout = absl::Seconds(10);
  absl::Duration retry_backoff = absl::Milliseconds(100);
  flags.String("data-dir", &data_dir,
               "directory of the journal (journal.db): accepted jobs and "
               "results survive a restart on the same directory");
  flags.Bool("ephemeral", &ephemeral,
             "keep everything in memory: no journal, nothing survives a "
             "restart");
  flags.String("journal-sync", &journal_sync,
               "full: fsync every commit (survives a machine crash); "
               "normal: fsync at checkpoints (survives a process crash)");
  flags.Duration("heartbeat-timeout", &heartbeat_timeout,
                 "a worker silent this long is declared dead and its tasks "
                 "run elsewhere");
  flags.Duration("retry-backoff", &retry_backoff,
                 "first wait before a task whose worker was lost runs "
                 "again; doubles per attempt, at most 5s");
  int64_t max_tasks_per_job = 1'000'000;
  int64_t max_jobs_per_client = 1000;
  absl::Duration max_sleep = absl::Hours(24);
  int64_t max_cpu_units = 1'000'000'000;
  int64_t max_text_bytes = 1 << 20;
  flags.Int("max-tasks-per-job", &max_tasks_per_job,
            "most tasks in one job; a bigger job is refused with "
            "INVALID_ARGUMENT",
            1, int64_t{1} << 32);
  flags.Int("max-jobs-per-client", &max_jobs_per_client,
            "most unfinished jobs one client address may have; more is "
            "RESOURCE_EXHAUSTED (0: no bound)",
            0, int64_t{1} << 32);
  flags.Duration("max-sleep", &max_sleep,
                 "longest sleep (and per-task timeout) a task may ask for");
  flags.Int("max-cpu-units", &max_cpu_units,
            "most iterations a cpu task may ask for", 0, int64_t{1} << 40);
  flags.Int("max-payload-bytes", &max_text_bytes,
            "largest echo payload or http URL", 0, 64 << 20);
  std::string metrics_listen;
  flags.String("metrics-listen", &metrics_listen,
               "HOST:PORT to serve Prometheus metrics on (/metrics); "
               "empty: none");
  qfarm::TlsFiles tls;
  flags.String("tls-cert", &tls.cert,
               "PEM certificate chain: serve TLS (with --tls-key)");
  flags.String("tls-key", &tls.key, "PEM private key of --tls-cert");
  flags.String("tls-ca", &tls.ca,
               "PEM CA bundle: require client certificates signed by it "
               "(mutual TLS)");
  std::string client_token_file, worker_token_file;
  flags.String("client-token-file", &client_token_file,
               "file holding the token clients must send as "
               "\"authorization: Bearer TOKEN\"");
  flags.String("worker-token-file", &worker_token_file,
               "file holding the token workers must send");
  auto args = flags.Parse(argc, argv);
  if (!args.ok()) {
    std::cerr << "qfarm-coordinator: " << args.status().message() << "\n";
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (!args->empty()) {
    std::cerr << "qfarm-coordinator: unexpected argument \"" << (*args)[0]
              << "\" (see --help)\n";
    return 2;
  }

  qfarm::coordinator::CoordinatorOptions options;
  for (auto [path, token] :
       {std::pair{&client_token_file, &options.client_token},
        std::pair{&worker_token_file, &options.worker_token}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> read = qfarm::ReadTokenFile(*path);
    if (!read.ok()) {
      std::cerr << "qfarm-coordinator: " << read.status().message() << "\n";
      return 2;
    }
    *token = *std::move(read);
  }
  if (journal_sync != "full" && journal_sync != "normal") {
    std::cerr << "qfarm-coordinator: --journal-sync=" << journal_sync
              << ": expected full or normal\n";
    return 2;
  }
  if (heartbeat_timeout <= absl::ZeroDuration()) {
    std::cerr << "qfarm-coordinator: --heartbeat-timeout must be positive\n";
    return 2;
  }
  options.tls = tls;
  options.listen = listen;
  if (!ephemeral) {
    if (data_dir.empty()) {
      std::cerr << "qfarm-coordinator: --data-dir is empty (use --ephemeral "
                   "for no journal)\n";
      return 2;
    }
    std::error_code error;
    std::filesystem::create_directories(data_dir, error);
    if (error) {
      std::cerr << "qfarm-coordinator: --data-dir=" << data_dir << ": "
                << error.message() << "\n";
      return 1;
    }
    options.data_dir = data_dir;
    options.journal.sync = journal_sync == "full"
                               ? qfarm::coordinator::JournalSync::kFull
                               : qfarm::coordinator::JournalSync::kNormal;
  }
  options.metrics_listen = metrics_listen;
  options.scheduler.heartbeat_timeout = heartbeat_timeout;
  options.scheduler.limits.max_sleep = max_sleep;
  options.scheduler.limits.max_timeout = max_sleep;
  options.scheduler.limits.max_cpu_units = max_cpu_units;
  options.scheduler.limits.max_text_bytes = static_cast<size_t>(max_text_bytes);
  options.limits.max_tasks_per_job = static_cast<size_t>(max_tasks_per_job);
  options.limits.max_jobs_per_client = static_cast<size_t>(max_jobs_per_client);
  options.scheduler.retry_backoff_base = retry_backoff;
  std::atomic<bool> fatal{false};
  options.on_fatal = [&fatal](const absl::Status&) {
    fatal = true;
    kill(getpid(), SIGTERM);  // Handled below like an operator's SIGTERM.
  };
  options.scheduler.max_queued = static_cast<size_t>(max_queued);
  options.scheduler.default_max_attempts = static_cast<uint32_t>(max_attempts);
  auto server = qfarm::coordinator::CoordinatorServer::Start(options);
  if (!server.ok()) {
    std::cerr << "qfarm-coordinator: " << server.status().message() << "\n";
    const absl::StatusCode code = server.status().code();
    return code == absl::StatusCode::kInvalidArgument ||
                   code == absl::StatusCode::kNotFound
               ? 2
               : 1;
  }
  if ((*server)->recovered_jobs() > 0) {
    QFARM_LOG(INFO) << "recovered " << (*server)->recovered_jobs()
                    << " jobs from " << data_dir;
  }
  std::cout << "qfarm-coordinator listening on " << (*server)->address()
            << std::endl;
  if ((*server)->metrics_port() > 0) {
    const size_t colon = metrics_listen.rfind(':');
    std::cout << "qfarm-coordinator metrics on "
              << metrics_listen.substr(0, colon) << ":"
              << (*server)->metrics_port() << std::endl;
  }

  const int sig = qfarm::WaitForTerminationSignal();
  QFARM_LOG(INFO) << "signal " << sig << ": shutting down";
  (*server)->Shutdown();
  QFARM_LOG(INFO) << "stopped";
  return fatal ? 1 : 0;
}
