#include "coordinator/worker_link_service.h"

#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/task_spec.h"
#include "coordinator/call_auth.h"
#include "coordinator/stream_reactor.h"

namespace qfarm::coordinator {
namespace {

// Task batches queued for one worker are merged up to this many assignments
// per message.
constexpr int kMaxAssignmentsPerMessage = 4096;
constexpr uint32_t kMaxSlots = 1'000'000;

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
        router_(router),
        peer_(std::move(peer)),
        heartbeat_interval_(heartbeat_interval) {}

  void Start() {
    self_ = shared_from_this();
    StartRead(&in_);
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
    if (!ok) {
      End(absl::OkStatus());
      return;
    }
    if (Ended()) return;
    if (key_ == 0) {
      if (!Hello()) return;
    } else if (in_.has_hello()) {
      End(absl::FailedPreconditionError("hello sent twice on one stream"));
      return;
    } else if (!scheduler_->Heartbeat(key_)) {
      // Declared dead while silent: its tasks went elsewhere.
      End(absl::UnavailableError(
          "worker declared dead after a silence; reconnect"));
      return;
    }
    if (in_.has_results()) {
      std::string violation;
      std::vector<JobId> jobs = scheduler_->RecordResultBatch(
          key_, in_.mutable_results()->mutable_results(), &violation);
      router_->WakeWatchers(jobs);
      if (!violation.empty()) {
        QFARM_LOG(WARNING) << "worker " << worker_id_ << ": " << violation;
        End(absl::FailedPreconditionError(violation));
        return;
      }
    }
    if (in_.credits() > 0) scheduler_->AddCredits(key_, in_.credits());
    router_->Pump();
    in_.Clear();
    if (!Ended()) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) End(absl::UnavailableError("write to worker failed"));
    WriteDone(ok);
  }

  void OnDone() override {
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

  // Handles the first message, which must be a hello: registers the worker
  // and queues its welcome. False if the stream ended.
  bool Hello() {
    if (!in_.has_hello()) {
      End(absl::FailedPreconditionError(
          "the first message on a worker stream must be a hello"));
      return false;
    }
    const v1::WorkerHello& hello = in_.hello();
    if (hello.slots() == 0 || hello.slots() > kMaxSlots) {
      End(absl::InvalidArgumentError(absl::StrCat(
          "hello.slots ", hello.slots(), " must be within 1..", kMaxSlots)));
      return false;
    }
    std::vector<std::string> kinds(hello.kinds().begin(), hello.kinds().end());
    if (absl::Status valid = ValidateOfferedKinds(kinds); !valid.ok()) {
      End(valid);
      return false;
    }
    std::string id = hello.worker_id();
    const WorkerKey key = scheduler_->AddWorker({.worker_id = id,
                                                 .mode = hello.mode(),
                                                 .slots = hello.slots(),
                                                 .peer = peer_,
                                                 .kinds = std::move(kinds)});
    if (id.empty()) id = absl::StrCat("worker-", key);
    worker_id_ = id;
    {
      absl::MutexLock lock(&mu_);
      key_ = key;
      v1::Welcome* welcome = queue_.emplace_back().mutable_welcome();
      welcome->set_worker_id(id);
      welcome->set_heartbeat_interval_ms(
          absl::ToInt64Milliseconds(heartbeat_interval_));
    }
    Pump();
    router_->AddWorker(key, shared_from_this());
    QFARM_LOG(INFO) << "worker " << id << " connected from " << peer_
                    << " (mode " << hello.mode() << ", " << hello.slots()
                    << " slots, kinds " << absl::StrJoin(hello.kinds(), ",")
                    << ")";
    return true;
  }

  // Unregisters the worker (its tasks go back to the queue) and ends the
  // stream: queued messages still go out when `status` is OK (a Close after
  // a final cancel, say). Idempotent.
  void End(const absl::Status& status) {
    WorkerKey key;
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      ended_ = true;
      key = key_;
      if (!status.ok()) queue_.clear();
    }
    WriteLoop::Close(status, /*drain=*/true);
    if (key != 0) {
      router_->WakeWatchers(scheduler_->RemoveWorker(key));
      router_->RemoveWorker(key);
      router_->Pump();
      QFARM_LOG(INFO) << "worker " << worker_id_ << " disconnected"
                      << (status.ok() ? "" : ": ") << status.message();
    }
  }

  Scheduler* const scheduler_;
  Router* const router_;
  const std::string peer_;
  const absl::Duration heartbeat_interval_;
  std::shared_ptr<WorkerStream> self_;  // Keeps this alive until OnDone().
  v1::WorkerMessage in_;                // Read side: only reactor callbacks.
  std::string worker_id_;
  WorkerKey key_ = 0;  // Written once in the first OnReadDone.

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
