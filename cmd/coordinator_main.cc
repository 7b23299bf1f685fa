// qfarm-coordinator: accepts jobs from clients and spreads their tasks over
// the workers that dial in. Prints "qfarm-coordinator listening on HOST:PORT"
// as its first line on stdout; stops cleanly on SIGINT or SIGTERM.
#include <iostream>
#include <utility>

#include "common/flags.h"
#include "coordinator/run_coordinator.h"

namespace {

constexpr char kUsage[] =
    "usage: qfarm-coordinator [--listen=HOST:PORT] [flags]\n"
    "\n"
    "Accepts jobs from clients (qfarm) and dispatches their tasks to the\n"
    "workers (qfarm-worker) that connect to it. Prints\n"
    "\"qfarm-coordinator listening on HOST:PORT\" first, with the real port\n"
    "when 0 was asked (then \"qfarm-coordinator metrics on HOST:PORT\" with\n"
    "--metrics-listen); stops on SIGINT or SIGTERM.";

// The flags that need a conversion before they go into the options.
struct Numbers {
  int64_t max_queued = 1'000'000;
  int64_t max_attempts = 3;
  int64_t max_tasks_per_job = 1'000'000;
  int64_t max_jobs_per_client = 1000;
  absl::Duration max_sleep = absl::Hours(24);
  int64_t max_cpu_units = 1'000'000'000;
  int64_t max_text_bytes = 1 << 20;
};

// Every flag, into `command` and `n`.
void DefineFlags(qfarm::FlagSet& flags,
                 qfarm::coordinator::CoordinatorCommand& command, Numbers& n) {
  qfarm::coordinator::CoordinatorOptions& options = command.options;
  flags.String("listen", &options.listen,
               "HOST:PORT to serve clients and workers on; port 0 picks a "
               "free one");
  flags.Int("max-queued", &n.max_queued,
            "most tasks waiting for a worker, across all jobs; a job that "
            "does not fit is refused with RESOURCE_EXHAUSTED",
            1, int64_t{1} << 32);
  flags.Int("max-attempts", &n.max_attempts,
            "attempts for tasks that do not set their own", 1, 100);
  flags.String("data-dir", &command.data_dir,
               "directory of the journal (journal.db): accepted jobs and "
               "results survive a restart on the same directory");
  flags.Bool("ephemeral", &command.ephemeral,
             "keep everything in memory: no journal, nothing survives a "
             "restart");
  flags.String("journal-sync", &command.journal_sync,
               "full: fsync every commit (survives a machine crash); "
               "normal: fsync at checkpoints (survives a process crash)");
  flags.Duration("heartbeat-timeout", &options.scheduler.heartbeat_timeout,
                 "a worker silent this long is declared dead and its tasks "
                 "run elsewhere");
  flags.Duration("retry-backoff", &options.scheduler.retry_backoff_base,
                 "first wait before a task whose worker was lost runs "
                 "again; doubles per attempt, at most 5s");
  flags.Int("max-tasks-per-job", &n.max_tasks_per_job,
            "most tasks in one job; a bigger job is refused with "
            "INVALID_ARGUMENT",
            1, int64_t{1} << 32);
  flags.Int("max-jobs-per-client", &n.max_jobs_per_client,
            "most unfinished jobs one client address may have; more is "
            "RESOURCE_EXHAUSTED (0: no bound)",
            0, int64_t{1} << 32);
  flags.Duration("max-sleep", &n.max_sleep,
                 "longest sleep (and per-task timeout) a task may ask for");
  flags.Int("max-cpu-units", &n.max_cpu_units,
            "most iterations a cpu task may ask for", 0, int64_t{1} << 40);
  flags.Int("max-payload-bytes", &n.max_text_bytes,
            "largest echo payload or http URL", 0, 64 << 20);
  flags.String("metrics-listen", &options.metrics_listen,
               "HOST:PORT to serve Prometheus metrics on (/metrics); "
               "empty: none");
  flags.String("tls-cert", &options.tls.cert,
               "PEM certificate chain: serve TLS (with --tls-key)");
  flags.String("tls-key", &options.tls.key, "PEM private key of --tls-cert");
  flags.String("tls-ca", &options.tls.ca,
               "PEM CA bundle: require client certificates signed by it "
               "(mutual TLS)");
  flags.String("client-token-file", &command.client_token_file,
               "file holding the token clients must send as "
               "\"authorization: Bearer TOKEN\"");
  flags.String("worker-token-file", &command.worker_token_file,
               "file holding the token workers must send");
}

}  // namespace

int main(int argc, char** argv) {
  qfarm::coordinator::CoordinatorCommand command;
  qfarm::coordinator::CoordinatorOptions& options = command.options;
  Numbers n;
  qfarm::FlagSet flags(kUsage);
  DefineFlags(flags, command, n);
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
  qfarm::coordinator::SchedulerOptions& scheduler = options.scheduler;
  scheduler.max_queued = static_cast<size_t>(n.max_queued);
  scheduler.default_max_attempts = static_cast<uint32_t>(n.max_attempts);
  scheduler.limits.max_sleep = n.max_sleep;
  scheduler.limits.max_timeout = n.max_sleep;
  scheduler.limits.max_cpu_units = n.max_cpu_units;
  scheduler.limits.max_text_bytes = static_cast<size_t>(n.max_text_bytes);
  options.limits.max_tasks_per_job = static_cast<size_t>(n.max_tasks_per_job);
  options.limits.max_jobs_per_client =
      static_cast<size_t>(n.max_jobs_per_client);
  return qfarm::coordinator::RunCoordinator(std::move(command));
}
