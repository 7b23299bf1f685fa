// The client-facing gRPC service (proto/qfarm/v1/farm.proto), a thin shell
// over the Scheduler: requests become scheduler calls, absl::Status becomes
// grpc::Status here and nowhere else.
#pragma once

#include "common/auth.h"
#include "coordinator/journal.h"
#include "coordinator/router.h"
#include "coordinator/scheduler.h"
#include "qfarm/v1/farm.grpc.pb.h"

namespace qfarm::coordinator {

class FarmService final : public v1::Farm::CallbackService {
 public:
  // `auth` is not owned and must outlive the service.
  FarmService(Scheduler* scheduler, Router* router, const TokenAuth* auth)
      : scheduler_(scheduler), router_(router), auth_(auth) {}

  // Journals accepted jobs and cancellations, and answers only once they
  // are durable. Call before the server starts; not owned.
  void SetJournal(Journal* journal) { journal_ = journal; }

  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* context,
                                      const v1::SubmitJobRequest* request,
                                      v1::SubmitJobResponse* response) override;
  grpc::ServerWriteReactor<v1::ResultBatch>* WatchJob(
      grpc::CallbackServerContext* context,
      const v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request,
                                   v1::JobInfo* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::CancelJobRequest* request,
                                      v1::CancelJobResponse* response) override;
  grpc::ServerUnaryReactor* ListWorkers(
      grpc::CallbackServerContext* context,
      const v1::ListWorkersRequest* request,
      v1::ListWorkersResponse* response) override;

 private:
  absl::Status Authorize(grpc::CallbackServerContext* context) const;

  Scheduler* const scheduler_;
  Router* const router_;
  const TokenAuth* const auth_;
  Journal* journal_ = nullptr;
};

}  // namespace qfarm::coordinator
