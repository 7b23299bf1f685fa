#include "coordinator/coordinator_server.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_options.h"

namespace qfarm::coordinator {

CoordinatorServer::CoordinatorServer(const CoordinatorOptions& options)
    : auth_(options.client_token, options.worker_token),
      scheduler_(options.clock ? options.clock : Clock::Real(),
                 options.scheduler),
      router_(&scheduler_),
      farm_service_(&scheduler_, &router_, &auth_),
      worker_link_service_(&scheduler_, &router_, &auth_) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const CoordinatorOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer(options));
  // grpc.health.v1, served by gRPC itself: SERVING while up, NOT_SERVING
  // from the start of Shutdown() (Kubernetes probes ask the empty name).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  ConfigureServerBuilder(builder);
  builder.AddListeningPort(options.listen, *credentials, &server->port_);
  builder.RegisterService(&server->farm_service_);
  builder.RegisterService(&server->worker_link_service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen));
  }
  const size_t colon = options.listen.rfind(':');
  server->address_ =
      absl::StrCat(options.listen.substr(0, colon), ":", server->port_);
  return server;
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

void CoordinatorServer::Shutdown() {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
  }
  router_.CloseAll(absl::UnavailableError("coordinator shutting down"));
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    server_->Wait();
  }
}

}  // namespace qfarm::coordinator
