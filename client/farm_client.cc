#include "client/farm_client.h"

#include <grpcpp/client_context.h>

#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/gather.h"
#include "common/auth.h"
#include "common/grpc_options.h"
#include "common/grpc_status.h"
#include "common/task_table.h"
#include "google/protobuf/arena.h"

namespace qfarm::client {
namespace {

absl::Status Watch(v1::Farm::StubInterface* stub, const std::string& token,
                   uint64_t job_id,
                   const std::function<void(v1::TaskResult&&)>& on_result,
                   WatchCanceller* canceller, absl::Duration reconnect_for);

}  // namespace

void WatchCanceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

bool WatchCanceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

void WatchCanceller::Attach(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  context_ = context;
  if (cancelled_) context_->TryCancel();
}

void WatchCanceller::Detach() {
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
}

std::unique_ptr<FarmClient> FarmClient::Create(const ClientOptions& options) {
  return std::make_unique<FarmClient>(
      options.credentials != nullptr
          ? MakeChannel(options.address, options.credentials)
          : MakeChannel(options.address),
      options);
}

FarmClient::FarmClient(std::shared_ptr<grpc::Channel> channel,
                       const ClientOptions& options)
    : stub_(v1::Farm::NewStub(std::move(channel))), options_(options) {}

void FarmClient::Prepare(grpc::ClientContext* context) const {
  context->set_deadline(
      absl::ToChronoTime(absl::Now() + options_.call_timeout));
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", BearerHeader(options_.token));
  }
}

absl::StatusOr<uint64_t> FarmClient::SubmitJob(
    const std::vector<v1::Task>& tasks) {
  // On an arena: the copies of the tasks cost no allocation each, and are
  // freed at once.
  google::protobuf::ArenaOptions arena_options;
  arena_options.max_block_size = 1 << 20;
  google::protobuf::Arena arena(arena_options);
  v1::SubmitJobRequest& request =
      *google::protobuf::Arena::CreateMessage<v1::SubmitJobRequest>(&arena);
  AppendTasksByKindIndex(tasks, *request.mutable_tasks(),
                         *request.mutable_kinds());
  const absl::Time give_up = absl::Now() + options_.retry_full_queue_for;
  absl::Duration pause = absl::Milliseconds(20);
  while (true) {
    v1::SubmitJobResponse response;
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status status = stub_->SubmitJob(&context, request, &response);
    if (status.ok()) return response.job_id();
    // A full queue empties as workers take tasks: wait when asked to.
    if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED ||
        absl::Now() + pause > give_up) {
      return FromGrpcStatus(status);
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Seconds(1));
  }
}

absl::Status FarmClient::WatchJob(
    uint64_t job_id, const std::function<void(v1::TaskResult&&)>& on_result,
    WatchCanceller* canceller) {
  return Watch(stub_.get(), options_.token, job_id, on_result, canceller,
               options_.reconnect_for);
}

absl::StatusOr<v1::JobInfo> FarmClient::GetJob(
    uint64_t job_id, std::optional<absl::Duration> timeout) {
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::JobInfo response;
  grpc::ClientContext context;
  Prepare(&context);
  if (timeout.has_value()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + *timeout));
  }
  grpc::Status status = stub_->GetJob(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<uint32_t> FarmClient::CancelJob(uint64_t job_id) {
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  v1::CancelJobResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  grpc::Status status = stub_->CancelJob(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.cancelled();
}

absl::StatusOr<std::vector<v1::WorkerInfo>> FarmClient::ListWorkers() {
  v1::ListWorkersRequest request;
  v1::ListWorkersResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  grpc::Status status = stub_->ListWorkers(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return std::vector<v1::WorkerInfo>(response.workers().begin(),
                                     response.workers().end());
}

absl::StatusOr<v1::ListJobsResponse> FarmClient::ListJobs(
    const v1::ListJobsRequest& request) {
  v1::ListJobsResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  grpc::Status status = stub_->ListJobs(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

std::unique_ptr<FarmSession> FarmClient::OpenSession() {
  return std::make_unique<FarmSession>(stub_, options_.token);
}

std::future<absl::StatusOr<v1::TaskResult>> FarmClient::Submit(v1::Task task) {
  std::promise<absl::StatusOr<v1::TaskResult>> promise;
  std::future<absl::StatusOr<v1::TaskResult>> future = promise.get_future();
  absl::StatusOr<uint64_t> job = SubmitJob({std::move(task)});
  if (!job.ok()) {
    promise.set_value(job.status());
    return future;
  }
  std::thread([stub = stub_, token = options_.token,
               reconnect_for = options_.reconnect_for, job_id = *job,
               promise = std::move(promise)]() mutable {
    absl::StatusOr<v1::TaskResult> out =
        absl::InternalError("job finished without a result");
    absl::Status status = Watch(
        stub.get(), token, job_id,
        [&out](v1::TaskResult&& result) { out = std::move(result); }, nullptr,
        reconnect_for);
    if (!status.ok()) out = status;
    promise.set_value(std::move(out));
  }).detach();
  return future;
}

absl::StatusOr<std::vector<v1::TaskResult>> FarmClient::Map(
    const std::vector<v1::Task>& tasks) {
  return GatherInOrder(tasks.size(), [&](const ResultCallback& on_result) {
    return AsCompleted(tasks, on_result);
  });
}

absl::Status FarmClient::AsCompleted(
    const std::vector<v1::Task>& tasks,
    const std::function<void(v1::TaskResult&&)>& on_result) {
  absl::StatusOr<uint64_t> job = SubmitJob(tasks);
  if (!job.ok()) return job.status();
  return WatchJob(*job, on_result);
}

namespace {

absl::Status Watch(v1::Farm::StubInterface* stub, const std::string& token,
                   uint64_t job_id,
                   const std::function<void(v1::TaskResult&&)>& on_result,
                   WatchCanceller* canceller, absl::Duration reconnect_for) {
  // A reconnect resumes after the results received from the same
  // coordinator process; one that restarted sends every result again, and
  // the set keeps each index to one delivery.
  absl::flat_hash_set<uint32_t> seen;
  uint64_t epoch = 0;
  uint64_t received = 0;
  absl::Time give_up = absl::Now() + reconnect_for;
  absl::Duration pause = absl::Milliseconds(50);
  while (true) {
    grpc::ClientContext context;
    if (!token.empty()) {
      context.AddMetadata("authorization", BearerHeader(token));
    }
    if (canceller != nullptr) canceller->Attach(&context);
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_resume_epoch(epoch);
    request.set_resume_after(received);
    std::unique_ptr<grpc::ClientReaderInterface<v1::ResultBatch>> reader =
        stub->WatchJob(&context, request);
    v1::ResultBatch batch;
    bool progressed = false;
    while (reader->Read(&batch)) {
      progressed = true;
      if (batch.epoch() != epoch) {
        // Another process: it started from the first result.
        epoch = batch.epoch();
        received = 0;
      }
      received += static_cast<uint64_t>(batch.results_size());
      for (v1::TaskResult& result : *batch.mutable_results()) {
        if (!seen.insert(result.index()).second) continue;
        on_result(std::move(result));
      }
    }
    grpc::Status status = reader->Finish();
    if (canceller != nullptr) canceller->Detach();
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        (canceller != nullptr && canceller->cancelled())) {
      return FromGrpcStatus(status);
    }
    // The coordinator went away (restart, network): resume watching.
    if (progressed) {
      give_up = absl::Now() + reconnect_for;
      pause = absl::Milliseconds(50);
    }
    if (absl::Now() + pause > give_up) return FromGrpcStatus(status);
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Seconds(2));
  }
}

}  // namespace
}  // namespace qfarm::client
