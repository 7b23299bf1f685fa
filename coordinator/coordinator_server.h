// A running coordinator: the scheduler, both gRPC services and the server.
//
//   auto server = CoordinatorServer::Start({.listen = "127.0.0.1:0"});
//   std::cout << (*server)->address();   // the real port
//   (*server)->Shutdown();
//
// Thread-safe.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/server.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/grpc_options.h"
#include "common/health_server.h"
#include "common/metrics.h"
#include "coordinator/farm_service.h"
#include "coordinator/journal.h"
#include "coordinator/router.h"
#include "coordinator/scheduler.h"
#include "coordinator/worker_link_service.h"

namespace qfarm::coordinator {

struct CoordinatorOptions {
  // HOST:PORT; port 0 picks a free one.
  std::string listen = "0.0.0.0:50051";
  SchedulerOptions scheduler;
  // Drives the scheduler's timestamps and the tick loop (expiry, retries,
  // keeping gRPC's threads awake). Not owned; null means Clock::Real().
  Clock* clock = nullptr;
  // TLS for both services (plaintext when empty); see MakeServerCredentials.
  TlsFiles tls;
  // Tokens callers must present; empty ones are not required.
  std::string client_token;
  std::string worker_token;
  FarmService::Limits limits;
  // HOST:PORT for the Prometheus endpoint (/metrics); empty: none.
  std::string metrics_listen;
  // HOST:PORT for a plaintext port serving only grpc.health.v1 (the same
  // answer as the main port's), for probes that cannot speak TLS; empty:
  // none.
  std::string health_listen;
  // Where the journal lives; empty keeps everything in memory (--ephemeral).
  std::string data_dir;
  JournalOptions journal;
  // Called once, from a coordinator thread, when the coordinator cannot go
  // on (its journal failed); the owner should shut it down.
  std::function<void(const absl::Status&)> on_fatal;
};

class CoordinatorServer {
 public:
  // UNAVAILABLE when the address cannot be bound; the credentials' errors
  // for bad TLS files; the journal's (DATA_LOSS, FAILED_PRECONDITION, ...)
  // when it cannot be opened or recovered.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      const CoordinatorOptions& options);

  ~CoordinatorServer();  // Calls Shutdown().

  // HOST:PORT with the port actually bound.
  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // Reports NOT_SERVING, stops the tick loop, ends every worker and watch
  // stream, stops accepting calls, waits for the calls in progress (at most
  // about a second), and flushes and closes the journal. Idempotent.
  void Shutdown();

  // The metrics endpoint's port, 0 when there is none.
  int metrics_port() const {
    return metrics_server_ ? metrics_server_->port() : 0;
  }

  // The health-only port, 0 when there is none.
  int health_port() const {
    return health_server_ ? health_server_->port() : 0;
  }

  // Jobs recovered from the journal at start-up.
  size_t recovered_jobs() const { return recovered_jobs_; }

 private:
  explicit CoordinatorServer(const CoordinatorOptions& options);

  // Expires silent workers every heartbeat_timeout/4, dispatches retried
  // tasks when their backoff ends and keeps gRPC's callback threads awake
  // (KeepCallbackThreadsAwake); stops at Shutdown().
  void TickLoop();
  // gRPC 1.51 on Linux (epoll1) runs callback-API reactors on a few
  // threads (half the cores, at least 2) that wait for completions with a
  // 1 s deadline and, when it passes, sleep 100 ms without polling. When
  // they idle out together, nothing reads the sockets or runs reactors for
  // up to 100 ms: a result arriving then (typically about 1 s after the
  // previous traffic) reaches its watcher late. A callback call every
  // kCallbackKeepAwake gives them a completion before they time out. It
  // goes to a lame channel, which fails it at once: no transport, no
  // server, nothing for a shutdown to race (an in-process channel to this
  // server did, and gRPC 1.51 crashed). The channel is the process's, and
  // outlives every server (see KeepAwakeStub() in the .cc). One call at a
  // time.
  void KeepCallbackThreadsAwake();

  Clock* const clock_;
  const TokenAuth auth_;
  Scheduler scheduler_;
  Router router_;
  FarmService farm_service_;
  WorkerLinkService worker_link_service_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsServer> metrics_server_;
  // Asks shut_down_; stopped by Shutdown() after the main server.
  std::unique_ptr<HealthServer> health_server_;
  // Whether a KeepCallbackThreadsAwake() call is in flight; shared with
  // its callback, which may run after this server is gone.
  struct KeepAwake {
    absl::Mutex mu;
    bool in_flight ABSL_GUARDED_BY(mu) = false;
  };
  const std::shared_ptr<KeepAwake> keep_awake_ = std::make_shared<KeepAwake>();
  std::string address_;
  int port_ = 0;
  size_t recovered_jobs_ = 0;
  const absl::Duration heartbeat_timeout_;
  std::function<void(const absl::Status&)> on_fatal_;
  std::thread ticker_;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  bool fatal_reported_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace qfarm::coordinator
