// The client-facing gRPC service (proto/qfarm/v1/farm.proto), a thin shell
// over the Scheduler: requests become scheduler calls, absl::Status becomes
// grpc::Status here and nowhere else.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/auth.h"
#include "coordinator/client_quota.h"
#include "coordinator/journal_interface.h"
#include "coordinator/page_token.h"
#include "coordinator/router.h"
#include "coordinator/scheduler.h"
#include "qfarm/v1/farm.grpc.pb.h"

namespace qfarm::coordinator {

// Who makes a call. Its `address` ("ipv4:10.0.0.7", without the port) is
// what ClientQuota bounds; `name` is what JobInfo.client shows: the common
// name of its TLS certificate as "cn:NAME" when it showed one, else the
// address. Never a token.
struct Caller {
  std::string address;
  std::string name;
};
Caller CallerOf(const grpc::CallbackServerContext& context);

// What the service's Session calls hold back now (session_stream.h), for
// tests and metrics.
struct SessionGauges {
  // Refusals queued for sending, over all sessions.
  std::atomic<int64_t> queued_refusals{0};
  // Sessions that stopped reading requests until their client reads.
  std::atomic<int64_t> paused_reads{0};
};

class FarmService final : public v1::Farm::CallbackService {
 public:
  // `auth` is not owned and must outlive the service.
  FarmService(Scheduler* scheduler, Router* router, const TokenAuth* auth);

  // Per-request bounds, beyond the scheduler's per-task ones.
  struct Limits {
    // Tasks in one SubmitJob; more is INVALID_ARGUMENT.
    size_t max_tasks_per_job = 1'000'000;
    // Unfinished jobs one client (its IP address) may have; more is
    // RESOURCE_EXHAUSTED. 0: no bound.
    size_t max_jobs_per_client = 1000;
  };
  // Call before the server starts.
  void SetLimits(const Limits& limits);

  // Journals accepted jobs and cancellations, and answers only once they
  // are durable. Call before the server starts; not owned.
  void SetJournal(JobJournal* journal) { journal_ = journal; }

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
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse>* Session(
      grpc::CallbackServerContext* context) override;

  // Checks a job of `caller` against the limits and submits it; on success
  // wakes the router and returns its id. `durable(id, status)` runs once the
  // job is journaled (on the journal's thread), or, without a journal, at
  // once, before this returns. Not called on refusal. With `hold`, the job
  // is accepted held (Scheduler::HoldJob()): the caller unholds it.
  using DurableCallback = std::function<void(JobId, absl::Status)>;
  absl::StatusOr<JobId> AcceptJob(const Caller& caller,
                                  std::vector<v1::Task> tasks,
                                  const std::vector<std::string>& kinds,
                                  DurableCallback durable, bool hold = false);

  Scheduler* scheduler() const { return scheduler_; }
  Router* router() const { return router_; }
  SessionGauges& session_gauges() { return session_gauges_; }
  const SessionGauges& session_gauges() const { return session_gauges_; }
  // Clients the quota tracks now (for tests and metrics).
  size_t tracked_clients() const { return quota_->tracked_clients(); }

 private:
  absl::Status Authorize(grpc::CallbackServerContext* context) const;
  // INVALID_ARGUMENT for a job of more than max_tasks_per_job tasks.
  absl::Status CheckTaskCount(size_t count) const;

  Scheduler* const scheduler_;
  Router* const router_;
  const TokenAuth* const auth_;
  JobJournal* journal_ = nullptr;
  Limits limits_;
  // Unfinished jobs per client, bounded by max_jobs_per_client.
  std::unique_ptr<ClientQuota> quota_;
  // Names this process in WatchJob's resume points (ResultBatch.epoch).
  const uint64_t epoch_;
  // ListJobs' page tokens, good for this process's life.
  const PageTokens page_tokens_ = PageTokens::WithRandomKey();
  SessionGauges session_gauges_;
};

}  // namespace qfarm::coordinator
