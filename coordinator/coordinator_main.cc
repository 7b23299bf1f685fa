// qfarm-coordinator: accepts jobs from clients and spreads their tasks over
// the workers that dial in. Prints "qfarm-coordinator listening on HOST:PORT"
// as its first line on stdout; stops cleanly on SIGINT or SIGTERM.
#include <iostream>
#include <string>

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
    "when 0 was asked; stops on SIGINT or SIGTERM.";

}  // namespace

int main(int argc, char** argv) {
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
  options.tls = tls;
  options.listen = listen;
  options.scheduler.max_queued = static_cast<size_t>(max_queued);
  options.scheduler.default_max_attempts = static_cast<uint32_t>(max_attempts);
  auto server = qfarm::coordinator::CoordinatorServer::Start(options);
  if (!server.ok()) {
    std::cerr << "qfarm-coordinator: " << server.status().message() << "\n";
    return server.status().code() == absl::StatusCode::kUnavailable ? 1 : 2;
  }
  std::cout << "qfarm-coordinator listening on " << (*server)->address()
            << std::endl;

  const int sig = qfarm::WaitForTerminationSignal();
  QFARM_LOG(INFO) << "signal " << sig << ": shutting down";
  (*server)->Shutdown();
  QFARM_LOG(INFO) << "stopped";
  return 0;
}
