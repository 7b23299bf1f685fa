// The worker process: dials the coordinator, keeps one bidirectional stream
// open (reconnecting with backoff when it breaks), runs the tasks it is sent
// on its executor, and sends results back in batches with the credits they
// free.
//
// Execution model: Run() reads the stream on the calling thread; one writer
// thread per connection sends results; the executor runs tasks on its own
// threads. Stop() may be called from any thread (a signal handler thread).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "executors/executor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "grpcpp/security/credentials.h"
#include "qfarm/kinds.h"
#include "worker/liveness.h"

namespace qfarm::worker {

struct WorkerOptions {
  // HOST:PORT of the coordinator.
  std::string coordinator = "127.0.0.1:50051";
  executors::Mode mode = executors::Mode::kThread;
  int slots = 4;
  std::string id;
  // The kinds it offers (qfarm/kinds.h), named in its hello. Not owned;
  // must outlive the link. Null means the built-in kinds.
  const Kinds* kinds = nullptr;
  // Null means plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Sent as "authorization: Bearer TOKEN" when not empty.
  std::string token;
  // On Stop(): how long in-flight tasks may run to completion before they
  // are abandoned (the coordinator re-queues them).
  absl::Duration drain_grace = absl::Seconds(10);
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // Drives heartbeats, the drain's grace and reconnect backoff. Not owned;
  // must outlive the link.
  Clock* clock = Clock::Real();
  // Ticked by the link's loop and told of its connections (see
  // liveness.h). Not owned; must outlive the link. Null: none.
  Liveness* liveness = nullptr;
};

// Counters for metrics, since the worker started.
struct WorkerStats {
  // Results by kind name (a kind it does not offer counts as "other") and
  // TaskState number.
  std::map<std::string, std::array<uint64_t, 8>> finished;
  // Started to finished, seconds, of tasks that ran.
  HistogramData run_seconds;
  int in_flight = 0;
  bool connected = false;
};

class WorkerLink : private executors::ResultSink {
 public:
  explicit WorkerLink(WorkerOptions options);
  ~WorkerLink() override;
  WorkerLink(const WorkerLink&) = delete;
  WorkerLink& operator=(const WorkerLink&) = delete;

  // Serves until Stop(), then drains and returns.
  void Run();

  // Stops taking work, lets in-flight tasks finish within the grace period,
  // closes the stream. Thread-safe; idempotent.
  void Stop();

  // A snapshot. Thread-safe.
  WorkerStats Stats() const;
  const WorkerOptions& options() const { return options_; }

 private:
  class Connection;

  void OnResult(v1::TaskResult result) override;
  // One lock for the batch; takes the results' contents and gives back
  // spent messages, which keep their allocations.
  void OnResults(std::vector<v1::TaskResult>& results) override;
  // Accounts for one finished task. Returns whether its result belongs to
  // the current connection (and should be sent).
  bool FinishLocked(const v1::TaskResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for the backoff or Stop(); returns false when stopping.
  bool WaitBackoff(absl::Duration d);
  // The place of the task's kind in kind_names_ (its kind_index, or the
  // place of its name), or kind_names_.size() for one it does not offer;
  // `hint` is tried first for a name (tasks come in runs of a kind).
  size_t KindIndex(const v1::Task& task, size_t hint) const {
    // The coordinator's way, on the path of every task.
    if (task.kind().empty()) {
      return std::min<size_t>(task.kind_index(), kind_names_.size());
    }
    return KindIndexOfName(task.kind(), hint);
  }
  size_t KindIndexOfName(const std::string& kind, size_t hint) const;

  const WorkerOptions options_;
  const Kinds& kinds_;
  // kinds_.names(), for the hello and the stats.
  const std::vector<std::string> kind_names_;
  std::unique_ptr<executors::Executor> executor_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time stop_deadline_ ABSL_GUARDED_BY(mu_);
  // Tasks submitted to the executor whose result has not come back, with the
  // connection generation that gave each: a result of an earlier
  // connection is void (the coordinator re-queued the task when that
  // stream ended) and is not sent.
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  struct InFlight {
    uint64_t generation = 0;
    // KindIndex() of its kind.
    size_t kind = 0;
  };
  absl::flat_hash_map<std::tuple<uint64_t, uint32_t, uint32_t>, InFlight>
      in_flight_generation_ ABSL_GUARDED_BY(mu_);
  // Results by KindIndex() and TaskState number.
  std::vector<std::array<uint64_t, 8>> finished_ ABSL_GUARDED_BY(mu_);
  HistogramData run_seconds_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, int> in_flight_jobs_ ABSL_GUARDED_BY(mu_);
  // Results and credits not yet sent on the current connection. The writer
  // swaps it with its message's, so cleared messages come back for reuse.
  google::protobuf::RepeatedPtrField<v1::TaskResult> pending_
      ABSL_GUARDED_BY(mu_);
  uint32_t pending_credits_ ABSL_GUARDED_BY(mu_) = 0;
  // The connection the writer serves; null between connections.
  Connection* connection_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace qfarm::worker
