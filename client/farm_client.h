// A client of a qfarm coordinator, shaped like Python's concurrent.futures:
//
//   auto client = FarmClient::Create({.address = "127.0.0.1:50051"});
//   std::future<absl::StatusOr<v1::TaskResult>> f = client->Submit(task);
//   auto results = client->Map(tasks);          // input order
//   client->AsCompleted(tasks, [](const v1::TaskResult& r) { ... });
//
// and the lower-level calls they are built on (SubmitJob, WatchJob, GetJob,
// CancelJob, ListWorkers, ListJobs), and OpenSession() for many small jobs on
// one call (farm_session.h). Errors are the coordinator's gRPC status as
// absl::Status (RESOURCE_EXHAUSTED for a full queue, NOT_FOUND for an unknown
// job, UNAVAILABLE when it cannot be reached).
//
// Thread-safe: one FarmClient may serve many threads.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/farm_session.h"
#include "qfarm/v1/farm.grpc.pb.h"

namespace qfarm::client {

struct ClientOptions {
  // HOST:PORT of the coordinator.
  std::string address = "127.0.0.1:50051";
  // Deadline of each unary call (submit, get, cancel, list).
  absl::Duration call_timeout = absl::Seconds(30);
  // Null means plaintext; see MakeChannelCredentials().
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Sent as "authorization: Bearer TOKEN" when not empty.
  std::string token;
  // A watch that loses the coordinator (UNAVAILABLE) reconnects and
  // resumes for this long without progress before giving up; each result
  // is still delivered once.
  absl::Duration reconnect_for = absl::Seconds(60);
  // SubmitJob refused with RESOURCE_EXHAUSTED (full queue) is retried with
  // backoff for this long; zero: not retried.
  absl::Duration retry_full_queue_for = absl::ZeroDuration();
};

// Lets a caller stop a WatchJob from another thread.
class WatchCanceller {
 public:
  // Ends the watch; WatchJob returns CANCELLED. Thread-safe.
  void Cancel();
  bool cancelled() const;

  // Used by FarmClient while a watch runs.
  void Attach(grpc::ClientContext* context);
  void Detach();

 private:
  mutable absl::Mutex mu_;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

class FarmClient {
 public:
  static std::unique_ptr<FarmClient> Create(const ClientOptions& options);

  FarmClient(std::shared_ptr<grpc::Channel> channel,
             const ClientOptions& options);

  // Submits a job; returns its id. The job is accepted whole or not at all.
  absl::StatusOr<uint64_t> SubmitJob(const std::vector<v1::Task>& tasks);

  // Calls `on_result` for each result of the job as it completes (already
  // recorded ones first), each index once, on the calling thread. Returns OK
  // once every task has a result. Reconnects when the coordinator goes away
  // (see ClientOptions::reconnect_for).
  absl::Status WatchJob(uint64_t job_id,
                        const std::function<void(v1::TaskResult&&)>& on_result,
                        WatchCanceller* canceller = nullptr);

  // `timeout`: this call's deadline instead of ClientOptions::call_timeout.
  absl::StatusOr<v1::JobInfo> GetJob(
      uint64_t job_id, std::optional<absl::Duration> timeout = std::nullopt);
  // Returns how many tasks were cancelled.
  absl::StatusOr<uint32_t> CancelJob(uint64_t job_id);
  absl::StatusOr<std::vector<v1::WorkerInfo>> ListWorkers();
  // One page of the coordinator's jobs, newest first (see ListJobs in
  // farm.proto).
  absl::StatusOr<v1::ListJobsResponse> ListJobs(
      const v1::ListJobsRequest& request);

  // A long-lived call for many small jobs (see farm_session.h).
  std::unique_ptr<FarmSession> OpenSession();

  // concurrent.futures: runs one task as a job of its own. Submits it on
  // the calling thread (a refusal is in the future at once), then watches
  // it on gRPC's callback threads, with no thread per call, reconnecting as
  // WatchJob does; the future holds its result or the error that ended the
  // watch. The watch may outlive this client.
  std::future<absl::StatusOr<v1::TaskResult>> Submit(v1::Task task);
  // Runs the tasks as one job; results in input order.
  absl::StatusOr<std::vector<v1::TaskResult>> Map(
      const std::vector<v1::Task>& tasks);
  // Runs the tasks as one job; calls `on_result` in completion order.
  absl::Status AsCompleted(
      const std::vector<v1::Task>& tasks,
      const std::function<void(v1::TaskResult&&)>& on_result);

 private:
  // Deadline and token of a unary call.
  void Prepare(grpc::ClientContext* context) const;

  // Shared with Submit()'s watches, which may outlive this client.
  std::shared_ptr<v1::Farm::Stub> stub_;
  const ClientOptions options_;
};

}  // namespace qfarm::client
