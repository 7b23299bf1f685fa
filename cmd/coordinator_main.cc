// qfarm-coordinator: accepts jobs from clients and spreads their tasks over
// the workers that dial in. Prints "qfarm-coordinator listening on HOST:PORT"
// as its first line on stdout; stops cleanly on SIGINT or SIGTERM.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "common/flags.h"
#include "coordinator/run_coordinator.h"

using qfarm::coordinator::CoordinatorCommand;
using qfarm::coordinator::SchedulerOptions;

// Defaults come from the option structs, so they are stated once.
ABSL_FLAG(std::string, listen, CoordinatorCommand().options.listen,
          "HOST:PORT to serve clients and workers on; port 0 picks a free one");
ABSL_FLAG(int64_t, max_queued,
          static_cast<int64_t>(SchedulerOptions().max_queued),
          "most tasks waiting for a worker, across all jobs; a job that does "
          "not fit is refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_attempts,
          static_cast<int64_t>(SchedulerOptions().default_max_attempts),
          "attempts for tasks that do not set their own");
ABSL_FLAG(std::string, data_dir, CoordinatorCommand().data_dir,
          "directory of the journal (journal.db): accepted jobs and results "
          "survive a restart on the same directory");
ABSL_FLAG(bool, ephemeral, false,
          "keep everything in memory: no journal, nothing survives a restart");
ABSL_FLAG(std::string, journal_sync, CoordinatorCommand().journal_sync,
          "full: fsync every commit (survives a machine crash); normal: fsync "
          "at checkpoints (survives a process crash)");
ABSL_FLAG(absl::Duration, heartbeat_timeout,
          SchedulerOptions().heartbeat_timeout,
          "a worker silent this long is declared dead and its tasks run "
          "elsewhere");
ABSL_FLAG(absl::Duration, retry_backoff, SchedulerOptions().retry_backoff_base,
          "first wait before a task whose worker was lost runs again; doubles "
          "per attempt, at most 5s");
ABSL_FLAG(
    int64_t, max_tasks_per_job,
    static_cast<int64_t>(CoordinatorCommand().options.limits.max_tasks_per_job),
    "most tasks in one job; a bigger job is refused with "
    "INVALID_ARGUMENT");
ABSL_FLAG(int64_t, max_jobs_per_client,
          static_cast<int64_t>(
              CoordinatorCommand().options.limits.max_jobs_per_client),
          "most unfinished jobs one client address may have; more is "
          "RESOURCE_EXHAUSTED (0: no bound)");
ABSL_FLAG(absl::Duration, max_sleep, qfarm::TaskLimits().max_sleep,
          "longest sleep (and per-task timeout) a task may ask for");
ABSL_FLAG(int64_t, max_cpu_units, qfarm::TaskLimits().max_cpu_units,
          "most iterations a cpu task may ask for");
ABSL_FLAG(int64_t, max_payload_bytes,
          static_cast<int64_t>(qfarm::TaskLimits().max_text_bytes),
          "largest task text or data (an echo payload, an http URL, another "
          "kind's argument); also the longest result value, if over 1 MiB");
ABSL_FLAG(absl::Duration, retain_finished,
          CoordinatorCommand().options.scheduler.retain_finished,
          "how long a finished job keeps its results; then it is released "
          "from memory and from the journal, and asking for it is NOT_FOUND "
          "(inf: kept for ever)");
ABSL_FLAG(std::string, retain_finished_bytes,
          CoordinatorCommand().retain_finished_bytes,
          "most bytes of results finished jobs keep in all (e.g. 1GiB, "
          "512MiB); past it the oldest finished jobs are released first");
ABSL_FLAG(std::string, kinds, "",
          "the task kinds accepted, comma-separated (e.g. sleep,echo,resize); "
          "a task of another kind is refused with INVALID_ARGUMENT; empty: "
          "any kind (tasks wait for a worker that offers theirs)");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus metrics on (/metrics); empty: none");
ABSL_FLAG(std::string, health_listen, "",
          "HOST:PORT to serve only the gRPC health service on, in plaintext "
          "even with TLS (for Kubernetes' grpc probes); empty: none");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve TLS (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle: require client certificates signed by it (mutual "
          "TLS)");
ABSL_FLAG(std::string, client_token_file, "",
          "file holding the token clients must send as \"authorization: "
          "Bearer TOKEN\"");
ABSL_FLAG(std::string, worker_token_file, "",
          "file holding the token workers must send");

namespace {

constexpr char kUsage[] =
    "usage: qfarm-coordinator [--listen=HOST:PORT] [flags]\n"
    "\n"
    "Accepts jobs from clients (qfarm) and dispatches their tasks to the\n"
    "workers (qfarm-worker) that connect to it. Prints\n"
    "\"qfarm-coordinator listening on HOST:PORT\" first, with the real port\n"
    "when 0 was asked (then \"qfarm-coordinator metrics on HOST:PORT\" with\n"
    "--metrics-listen, and \"qfarm-coordinator health on HOST:PORT\" with\n"
    "--health-listen); stops on SIGINT or SIGTERM.";

// The command the flags ask for.
CoordinatorCommand FromFlags() {
  CoordinatorCommand command;
  qfarm::coordinator::CoordinatorOptions& options = command.options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.health_listen = absl::GetFlag(FLAGS_health_listen);
  options.tls = {.cert = absl::GetFlag(FLAGS_tls_cert),
                 .key = absl::GetFlag(FLAGS_tls_key),
                 .ca = absl::GetFlag(FLAGS_tls_ca)};
  options.limits.max_tasks_per_job =
      static_cast<size_t>(absl::GetFlag(FLAGS_max_tasks_per_job));
  options.limits.max_jobs_per_client =
      static_cast<size_t>(absl::GetFlag(FLAGS_max_jobs_per_client));
  SchedulerOptions& scheduler = options.scheduler;
  scheduler.max_queued = static_cast<size_t>(absl::GetFlag(FLAGS_max_queued));
  scheduler.default_max_attempts =
      static_cast<uint32_t>(absl::GetFlag(FLAGS_max_attempts));
  scheduler.heartbeat_timeout = absl::GetFlag(FLAGS_heartbeat_timeout);
  scheduler.retry_backoff_base = absl::GetFlag(FLAGS_retry_backoff);
  scheduler.retain_finished = absl::GetFlag(FLAGS_retain_finished);
  command.retain_finished_bytes = absl::GetFlag(FLAGS_retain_finished_bytes);
  scheduler.limits.max_sleep = absl::GetFlag(FLAGS_max_sleep);
  scheduler.limits.max_timeout = absl::GetFlag(FLAGS_max_sleep);
  scheduler.limits.max_cpu_units = absl::GetFlag(FLAGS_max_cpu_units);
  qfarm::SetMaxPayloadBytes(
      static_cast<size_t>(absl::GetFlag(FLAGS_max_payload_bytes)),
      &scheduler.limits);
  command.data_dir = absl::GetFlag(FLAGS_data_dir);
  command.ephemeral = absl::GetFlag(FLAGS_ephemeral);
  command.kinds = absl::GetFlag(FLAGS_kinds);
  command.journal_sync = absl::GetFlag(FLAGS_journal_sync);
  command.client_token_file = absl::GetFlag(FLAGS_client_token_file);
  command.worker_token_file = absl::GetFlag(FLAGS_worker_token_file);
  return command;
}

}  // namespace

int main(int argc, char** argv) {
  using qfarm::Flag;
  const qfarm::CommandLine flags(
      kUsage, {Flag(FLAGS_listen),
               Flag(FLAGS_max_queued, 1, int64_t{1} << 32),
               Flag(FLAGS_max_attempts, 1, 100),
               Flag(FLAGS_data_dir),
               Flag(FLAGS_ephemeral),
               Flag(FLAGS_journal_sync),
               Flag(FLAGS_heartbeat_timeout),
               Flag(FLAGS_retry_backoff),
               Flag(FLAGS_max_tasks_per_job, 1, int64_t{1} << 32),
               Flag(FLAGS_max_jobs_per_client, 0, int64_t{1} << 32),
               Flag(FLAGS_max_sleep),
               Flag(FLAGS_max_cpu_units, 0, int64_t{1} << 40),
               Flag(FLAGS_max_payload_bytes, 0,
                    static_cast<int64_t>(qfarm::kMaxPayloadBytesCeiling)),
               Flag(FLAGS_retain_finished),
               Flag(FLAGS_retain_finished_bytes),
               Flag(FLAGS_kinds),
               Flag(FLAGS_metrics_listen),
               Flag(FLAGS_health_listen),
               Flag(FLAGS_tls_cert),
               Flag(FLAGS_tls_key),
               Flag(FLAGS_tls_ca),
               Flag(FLAGS_client_token_file),
               Flag(FLAGS_worker_token_file)});
  if (std::optional<int> exit =
          flags.ParseFlagsOnly(argc, argv, "qfarm-coordinator")) {
    return *exit;
  }
  return qfarm::coordinator::RunCoordinator(FromFlags());
}
