// A plaintext gRPC server with the standard health service and nothing
// else, for probes that cannot speak TLS or send tokens (Kubernetes'
// native grpc: probes). Each Check asks `check`: OK is SERVING, an error
// NOT_SERVING. Only the empty service name (the server as a whole) is
// known; another is NOT_FOUND, as in gRPC's own health service. Watch is
// UNIMPLEMENTED (probes only Check).
//
//   auto health = HealthServer::Start("0.0.0.0:8080",
//                                     [] { return absl::OkStatus(); });
//   std::cout << (*health)->address();   // the real port
//
// Thread-safe but for Shutdown() and the destructor, which the owner calls.
// `check` runs on gRPC's threads, once per Check, and must not block: a
// probe that is not answered in time counts as a failure.
#pragma once

#include <grpcpp/server.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qfarm {

class HealthServer {
 public:
  using Checker = std::function<absl::Status()>;

  // INVALID_ARGUMENT when `listen` is not HOST:PORT with a port in
  // [0, 65535]; UNAVAILABLE when it cannot be bound. Port 0 picks a free
  // one.
  static absl::StatusOr<std::unique_ptr<HealthServer>> Start(
      const std::string& listen, Checker check);

  ~HealthServer();  // Calls Shutdown().
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  // HOST:PORT with the port actually bound.
  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // Stops answering; `check` is not called after it returns. Idempotent.
  void Shutdown();

 private:
  class Service;

  HealthServer();

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
};

}  // namespace qfarm
