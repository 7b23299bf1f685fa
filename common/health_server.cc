#include "common/health_server.h"

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_options.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace qfarm {

class HealthServer::Service final
    : public grpc::health::v1::Health::CallbackService {
 public:
  explicit Service(Checker check) : check_(std::move(check)) {}

  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (!request->service().empty()) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("unknown service \"", request->service(), "\"")));
      return reactor;
    }
    response->set_status(
        check_().ok() ? grpc::health::v1::HealthCheckResponse::SERVING
                      : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const Checker check_;
};

HealthServer::HealthServer() = default;

HealthServer::~HealthServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(
    const std::string& listen, Checker check) {
  const size_t colon = listen.rfind(':');
  int requested_port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &requested_port) ||
      requested_port < 0 || requested_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", listen, "\" is not HOST:PORT"));
  }
  std::unique_ptr<HealthServer> server(new HealthServer);
  server->service_ = std::make_unique<Service>(std::move(check));
  grpc::ServerBuilder builder;
  ConfigureServerBuilder(builder);
  // gRPC's own health service, when a server of this process enabled it
  // (grpc::EnableDefaultHealthCheckService is process-wide), would clash
  // with ours.
  builder.SetOption(
      std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
  server->address_ = absl::StrCat(listen.substr(0, colon), ":", server->port_);
  return server;
}

void HealthServer::Shutdown() {
  if (server_ == nullptr) return;
  // Probes are unary and quick: a short grace, then cancelled.
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(500));
  server_->Wait();
  server_.reset();
}

}  // namespace qfarm
