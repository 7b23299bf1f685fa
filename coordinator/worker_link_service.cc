#include "coordinator/worker_link_service.h"

#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_join.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/task_spec.h"
#include "coordinator/call_auth.h"
#include "coordinator/stream_reactor.h"
#include "coordinator/worker_protocol.h"

namespace qfarm::coordinator {
namespace {

// Task batches queued for one worker are merged up to this many assignments
// per message.
constexpr int kMaxAssignmentsPerMessage = 4096;

using WorkerReactor =
    grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>;

// One worker's stream. Owns a send queue (gRPC allows one write in flight).
// Lives until OnDone() and until the router lets go of it.
class WorkerStream final
    : public ServerStream<WorkerReactor, v1::CoordinatorMessage>,
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
    StreamBirth::Published();
    self_ = shared_from_this();
    read_handoff_.Start([this] { StartRead(&in_); });
  }

  void SendTasks(
      google::protobuf::RepeatedPtrField<v1::Assignment> assignments) override {
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      // The messages move, not their contents.
      if (!queue_.empty() && queue_.back().has_tasks() &&
          queue_.back().tasks().assignments_size() <
              kMaxAssignmentsPerMessage) {
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
    }
    Pump();
  }

  void SendCancel(JobId job) override {
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      queue_.emplace_back().mutable_cancel()->add_job_ids(job);
    }
    Pump();
  }

  void Close(const absl::Status& status) override { End(status); }

  void OnReadDone(bool ok) override {
    read_handoff_.Arrived();
    if (!ok) {
      End(absl::OkStatus());
      return;
    }
    if (Ended()) return;
    absl::Status status =
        protocol_.OnMessage(in_, [this](WorkerKey, const std::string& id) {
          {
            absl::MutexLock lock(&mu_);
            v1::Welcome* welcome = queue_.emplace_back().mutable_welcome();
            welcome->set_worker_id(id);
            welcome->set_heartbeat_interval_ms(
                absl::ToInt64Milliseconds(heartbeat_interval_));
          }
          Pump();
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
                      << " slots, kinds "
                      << absl::StrJoin(in_.hello().kinds(), ",") << ")";
    }
    in_.Clear();
    if (!Ended()) read_handoff_.Start([this] { StartRead(&in_); });
  }

  void OnWriteDone(bool ok) override {
    StreamBirth::Seen();
    if (!ok) End(absl::UnavailableError("write to worker failed"));
    WriteDone(ok);
  }

  void OnDone() override {
    StreamBirth::Seen();
    End(absl::OkStatus());  // No-op when already ended; unregisters otherwise.
    self_.reset();
  }

 protected:
  Fill FillNext(v1::CoordinatorMessage* out, absl::Status* /*finish*/) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return Fill::kIdle;
    *out = std::move(queue_.front());
    queue_.pop_front();
    return Fill::kMessage;
  }

  // Gives the assignments just sent back to the scheduler to fill again.
  void OnSent(v1::CoordinatorMessage* sent) override {
    if (!sent->has_tasks()) return;
    google::protobuf::RepeatedPtrField<v1::Assignment> assignments;
    assignments.Swap(sent->mutable_tasks()->mutable_assignments());
    scheduler_->RecycleAssignments(&assignments);
  }

 private:
  bool Ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

  // Unregisters the worker (its tasks go back to the queue) and ends the
  // stream: queued messages still go out when `status` is OK (a Close after
  // a final cancel, say). Idempotent.
  void End(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      ended_ = true;
      if (!status.ok()) queue_.clear();
    }
    if (protocol_.OnEnd()) {
      QFARM_LOG(INFO) << "worker " << protocol_.worker_id() << " disconnected"
                      << (status.ok() ? "" : ": ") << status.message();
    }
    WriteLoop::Close(status, /*drain=*/true);
  }

  Scheduler* const scheduler_;
  const std::string peer_;
  const absl::Duration heartbeat_interval_;
  std::shared_ptr<WorkerStream> self_;  // Keeps this alive until OnDone().
  v1::WorkerMessage in_;                // Read side: only reactor callbacks.
  Handoff read_handoff_;
  WorkerProtocol protocol_;

  std::deque<v1::CoordinatorMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>*
WorkerLinkService::Connect(grpc::CallbackServerContext* context) {
  absl::Status auth = auth_->Check(AuthorizationOf(*context), Role::kWorker);
  if (!auth.ok()) {
    QFARM_LOG(WARNING) << "worker stream from " << context->peer()
                       << " refused: " << auth.message();
    return new Refused<WorkerReactor>(auth);
  }
  auto stream = std::make_shared<WorkerStream>(
      scheduler_, router_, context->peer(), heartbeat_interval_);
  stream->Start();
  return stream.get();
}

}  // namespace qfarm::coordinator
