// A running coordinator: the scheduler, both gRPC services and the server.
//
//   auto server = CoordinatorServer::Start({.listen = "127.0.0.1:0"});
//   std::cout << (*server)->address();   // the real port
//   (*server)->Shutdown();
//
// Thread-safe.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/grpc_options.h"
#include "coordinator/farm_service.h"
#include "coordinator/router.h"
#include "coordinator/scheduler.h"
#include "coordinator/worker_link_service.h"

namespace qfarm::coordinator {

struct CoordinatorOptions {
  // HOST:PORT; port 0 picks a free one.
  std::string listen = "0.0.0.0:50051";
  SchedulerOptions scheduler;
  // Not owned; null means Clock::Real().
  Clock* clock = nullptr;
  // TLS for both services (plaintext when empty); see MakeServerCredentials.
  TlsFiles tls;
  // Tokens callers must present; empty ones are not required.
  std::string client_token;
  std::string worker_token;
};

class CoordinatorServer {
 public:
  // UNAVAILABLE when the address cannot be bound; the credentials' errors
  // for bad TLS files.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      const CoordinatorOptions& options);

  ~CoordinatorServer();  // Calls Shutdown().

  // HOST:PORT with the port actually bound.
  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // Ends every worker and watch stream, stops accepting calls and waits for
  // the calls in progress (at most about a second). Idempotent.
  void Shutdown();

 private:
  explicit CoordinatorServer(const CoordinatorOptions& options);

  const TokenAuth auth_;
  Scheduler scheduler_;
  Router router_;
  FarmService farm_service_;
  WorkerLinkService worker_link_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace qfarm::coordinator
