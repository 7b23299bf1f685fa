#include "coordinator/worker_link_service.h"

#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "coordinator/call_auth.h"
#include "coordinator/worker_protocol.h"

namespace qfarm::coordinator {
namespace {

// Task batches queued for one worker are merged up to this many assignments
// per message.
constexpr int kMaxAssignmentsPerMessage = 4096;

// One worker's stream. Owns a send queue (gRPC allows one write in flight).
// Lives until OnDone() and until the router lets go of it.
class WorkerStream final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>,
      public WorkerChannel,
      public std::enable_shared_from_this<WorkerStream> {
 public:
  WorkerStream(Scheduler* scheduler, Router* router, std::string peer,
               absl::Duration heartbeat_interval)
      : scheduler_(scheduler),
        peer_(peer),
        heartbeat_interval_(heartbeat_interval),
        protocol_(scheduler, router, std::move(peer)) {}

  void Start() {
    self_ = shared_from_this();
    StartRead(&in_);
  }

  void SendTasks(
      google::protobuf::RepeatedPtrField<v1::Assignment> assignments) override {
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    // The messages move, not their contents.
    if (!queue_.empty() && queue_.back().has_tasks() &&
        queue_.back().tasks().assignments_size() < kMaxAssignmentsPerMessage) {
      auto* to = queue_.back().mutable_tasks()->mutable_assignments();
      const int n = assignments.size();
      std::vector<v1::Assignment*> moved(static_cast<size_t>(n));
      assignments.ExtractSubrange(0, n, moved.data());
      to->Reserve(to->size() + n);
      for (v1::Assignment* a : moved) to->AddAllocated(a);
    } else {
      queue_.emplace_back().mutable_tasks()->mutable_assignments()->Swap(
          &assignments);
    }
    MaybeStartWriteLocked();
  }

  void SendCancel(JobId job) override {
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    queue_.emplace_back().mutable_cancel()->add_job_ids(job);
    MaybeStartWriteLocked();
  }

  void Close(const absl::Status& status) override { End(status); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      End(absl::OkStatus());
      return;
    }
    if (Ending()) return;
    absl::Status status =
        protocol_.OnMessage(in_, [this](WorkerKey, const std::string& id) {
          absl::MutexLock lock(&mu_);
          v1::Welcome* welcome = queue_.emplace_back().mutable_welcome();
          welcome->set_worker_id(id);
          welcome->set_heartbeat_interval_ms(
              absl::ToInt64Milliseconds(heartbeat_interval_));
          MaybeStartWriteLocked();
          return shared_from_this();
        });
    if (!status.ok()) {
      if (status.code() == absl::StatusCode::kFailedPrecondition) {
        QFARM_LOG(WARNING) << "worker " << protocol_.worker_id() << " from "
                           << peer_ << ": " << status.message();
      }
      End(status);
      return;
    }
    if (in_.has_hello()) {
      QFARM_LOG(INFO) << "worker " << protocol_.worker_id()
                      << " connected from " << peer_ << " (mode "
                      << in_.hello().mode() << ", " << in_.hello().slots()
                      << " slots)";
    }
    in_.Clear();
    if (!Ending()) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    // The assignments just sent, for the scheduler to fill again.
    google::protobuf::RepeatedPtrField<v1::Assignment> sent;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (out_.has_tasks()) {
        sent.Swap(out_.mutable_tasks()->mutable_assignments());
      }
      if (ok && !queue_.empty()) {
        MaybeStartWriteLocked();
      } else {
        // A failed write ends the stream too. If End() already ran (a Close
        // while this write was in flight), this is the place that finishes
        // it: End() below then returns at once.
        if (!ok) queue_.clear();
        finish = finishing_ && !finish_called_;
        if (finish) finish_called_ = true;
      }
    }
    if (!sent.empty()) scheduler_->RecycleAssignments(&sent);
    if (!ok) End(absl::UnavailableError("write to worker failed"));
    if (finish) Finish(ToGrpcStatus(finish_status_));
  }

  void OnDone() override {
    End(absl::OkStatus());  // No-op when already ended; unregisters otherwise.
    self_.reset();
  }

 private:
  bool Ending() {
    absl::MutexLock lock(&mu_);
    return finishing_;
  }

  // Starts the next write if none is in flight. StartWrite does not run
  // callbacks inline, so calling it under mu_ is safe.
  void MaybeStartWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || queue_.empty()) return;
    out_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&out_);
  }

  // Unregisters the worker (its tasks go back to the queue) and finishes the
  // stream once the write in flight, if any, completes. Idempotent.
  void End(const absl::Status& status) {
    bool finish_now = false;
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;
      finishing_ = true;
      finish_status_ = status;
      if (!status.ok()) queue_.clear();
      // Queued messages still go out (a Close after a final cancel, say);
      // the write chain finishes the stream when the queue drains.
      if (!writing_ && queue_.empty()) {
        finish_now = true;
        finish_called_ = true;
      } else if (!writing_) {
        MaybeStartWriteLocked();
      }
    }
    if (protocol_.OnEnd()) {
      QFARM_LOG(INFO) << "worker " << protocol_.worker_id() << " disconnected"
                      << (status.ok() ? "" : ": ") << status.message();
    }
    if (finish_now) Finish(ToGrpcStatus(status));
  }

  Scheduler* const scheduler_;
  const std::string peer_;
  const absl::Duration heartbeat_interval_;
  std::shared_ptr<WorkerStream> self_;  // Keeps this alive until OnDone().
  v1::WorkerMessage in_;                // Read side: only reactor callbacks.
  WorkerProtocol protocol_;

  absl::Mutex mu_;
  std::deque<v1::CoordinatorMessage> queue_ ABSL_GUARDED_BY(mu_);
  v1::CoordinatorMessage out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status finish_status_;  // Set once, under mu_, before finishing_.
};

// A worker stream refused before it started.
class RefusedStream final
    : public grpc::ServerBidiReactor<v1::WorkerMessage,
                                     v1::CoordinatorMessage> {
 public:
  explicit RefusedStream(const absl::Status& status) {
    Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>*
WorkerLinkService::Connect(grpc::CallbackServerContext* context) {
  absl::Status auth = auth_->Check(AuthorizationOf(*context), Role::kWorker);
  if (!auth.ok()) {
    QFARM_LOG(WARNING) << "worker stream from " << context->peer()
                       << " refused: " << auth.message();
    return new RefusedStream(auth);
  }
  auto stream = std::make_shared<WorkerStream>(
      scheduler_, router_, context->peer(), heartbeat_interval_);
  stream->Start();
  return stream.get();
}

}  // namespace qfarm::coordinator
