// The worker-facing gRPC service: one long-lived bidirectional stream per
// worker connection (see proto/qfarm/v1/worker_link.proto). A thin shell:
// every decision is the Scheduler's; this class turns stream events into
// scheduler calls and routes the outcome.
#pragma once

#include "common/auth.h"
#include "coordinator/router.h"
#include "coordinator/scheduler.h"
#include "qfarm/v1/worker_link.grpc.pb.h"

namespace qfarm::coordinator {

class WorkerLinkService final : public v1::WorkerLink::CallbackService {
 public:
  // `auth` is not owned and must outlive the service.
  WorkerLinkService(Scheduler* scheduler, Router* router, const TokenAuth* auth)
      : scheduler_(scheduler), router_(router), auth_(auth) {}

  // Told to workers in the welcome; call before the server starts.
  void SetHeartbeatInterval(absl::Duration interval) {
    heartbeat_interval_ = interval;
  }

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  Scheduler* const scheduler_;
  Router* const router_;
  const TokenAuth* const auth_;
  absl::Duration heartbeat_interval_ = absl::Seconds(2);
};

}  // namespace qfarm::coordinator
