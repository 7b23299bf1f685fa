// Many jobs on one long-lived call (the coordinator's Session RPC): no call
// to set up per job and no second call to start watching, so a job of one
// small task costs one message each way. For clients that run many small
// jobs, one after the other or from several threads at once:
//
//   std::unique_ptr<FarmSession> session = client->OpenSession();
//   for (...) {
//     absl::StatusOr<std::vector<v1::TaskResult>> r = session->Run({task});
//   }
//   absl::Status end = session->Close();
//
// A session does not reconnect: when the coordinator goes away, every job
// waiting on it fails with UNAVAILABLE (the jobs themselves go on on the
// farm, and FarmClient::WatchJob can follow them by id).
//
// Thread-safe: several threads may Run jobs on one session at once. The
// thread that waits reads the stream for all of them (there is no reader
// thread), so a single caller gets its results without a thread hand-off.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "qfarm/v1/farm.grpc.pb.h"

namespace qfarm::client {

class FarmSession {
 public:
  // Opens the call; `token`, when not empty, is sent as a bearer token.
  // Errors (unreachable coordinator, bad token) surface on the first Run().
  FarmSession(std::shared_ptr<v1::Farm::StubInterface> stub,
              const std::string& token);
  // Cancels the call if Close() was not called. No Run() may be in progress.
  ~FarmSession();
  FarmSession(const FarmSession&) = delete;
  FarmSession& operator=(const FarmSession&) = delete;

  // Runs the tasks as one job; results in input order. The coordinator's
  // refusal (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...) comes back as is.
  absl::StatusOr<std::vector<v1::TaskResult>> Run(
      const std::vector<v1::Task>& tasks);
  // Runs the tasks as one job; calls `on_result` in completion order, on
  // the calling thread. `on_accepted`, if set, is called once on the
  // calling thread with the job's id as soon as the coordinator accepted
  // it, before any result (for CancelJob from another thread).
  absl::Status RunAsCompleted(
      const std::vector<v1::Task>& tasks,
      const std::function<void(v1::TaskResult&&)>& on_result,
      const std::function<void(uint64_t job_id)>& on_accepted = nullptr);

  // Tells the coordinator no more jobs come, waits for the call to end and
  // returns how it ended (OK once every job finished). No Run() may start
  // after; one still in progress keeps its results.
  absl::Status Close();

 private:
  struct Job {
    std::vector<v1::TaskResult> pending;  // Read, not yet delivered.
    uint64_t job_id = 0;
    std::optional<absl::Status> done;
  };

  // Reads one response and hands it to its job; on the stream's end, ends
  // every job. Called by one thread at a time (the one with reading_ set).
  void ReadOne() ABSL_LOCKS_EXCLUDED(mu_);
  // Finishes the call (blocking until its status is in) and returns how it
  // ended. Called once, by the reading thread or the destructor.
  absl::Status FinishStream() ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  // Records that the call ended with `status`; every job still open fails
  // with it.
  void EndJobs(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriterInterface<v1::SessionRequest,
                                                    v1::SessionResponse>>
      stream_;

  absl::Mutex write_mu_;  // One Write() or Finish() at a time.
  bool writes_done_ ABSL_GUARDED_BY(write_mu_) = false;

  absl::Mutex mu_;
  uint64_t next_tag_ ABSL_GUARDED_BY(mu_) = 1;
  // Node map: a waiting thread keeps a pointer to its job across inserts.
  absl::node_hash_map<uint64_t, Job> jobs_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;  // A thread is in Read().
  std::optional<absl::Status> ended_ ABSL_GUARDED_BY(mu_);
  v1::SessionResponse response_;  // Used by the reading thread only.
};

}  // namespace qfarm::client
