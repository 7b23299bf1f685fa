#include "coordinator/worker_protocol.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/task_spec.h"

namespace qfarm::coordinator {

absl::Status WorkerProtocol::OnMessage(v1::WorkerMessage& message,
                                       OnRegistered registered) {
  {
    absl::MutexLock lock(&mu_);
    if (ended_) return absl::UnavailableError("the worker stream ended");
  }
  if (read_key_ == 0) {
    if (!message.has_hello()) {
      return absl::FailedPreconditionError(
          "the first message on a worker stream must be a hello");
    }
    RETURN_IF_ERROR(OnHello(message.hello(), registered));
  } else if (message.has_hello()) {
    return absl::FailedPreconditionError("hello sent twice on one stream");
  } else if (!scheduler_->Heartbeat(read_key_)) {
    // Declared dead while silent: its tasks went elsewhere.
    return absl::UnavailableError(
        "worker declared dead after a silence; reconnect");
  }
  if (message.has_results()) {
    std::string violation;
    std::vector<JobId> jobs = scheduler_->RecordResultBatch(
        read_key_, message.mutable_results()->mutable_results(), &violation);
    router_->WakeWatchers(jobs);
    if (!violation.empty()) return absl::FailedPreconditionError(violation);
  }
  if (message.credits() > 0) {
    scheduler_->AddCredits(read_key_, message.credits());
  }
  router_->Pump();
  return absl::OkStatus();
}

absl::Status WorkerProtocol::OnHello(const v1::WorkerHello& hello,
                                     OnRegistered registered) {
  if (hello.slots() == 0 || hello.slots() > kMaxWorkerSlots) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hello.slots ", hello.slots(), " must be within 1..", kMaxWorkerSlots));
  }
  std::vector<std::string> kinds(hello.kinds().begin(), hello.kinds().end());
  RETURN_IF_ERROR(ValidateOfferedKinds(kinds));
  const WorkerKey key = scheduler_->AddWorker({.worker_id = hello.worker_id(),
                                               .mode = hello.mode(),
                                               .slots = hello.slots(),
                                               .peer = peer_,
                                               .kinds = std::move(kinds)});
  std::string id = hello.worker_id();
  if (id.empty()) id = absl::StrCat("worker-", key);
  // The router may close the channel at once (coordinator shutting down):
  // OnEnd() then finds no key and the worker is removed here.
  router_->AddWorker(key, registered(key, id));
  bool ended;
  {
    absl::MutexLock lock(&mu_);
    ended = ended_;
    if (!ended) {
      key_ = key;
      worker_id_ = std::move(id);
    }
  }
  if (ended) {
    Remove(key);
    return absl::UnavailableError("the worker stream ended");
  }
  read_key_ = key;
  return absl::OkStatus();
}

bool WorkerProtocol::OnEnd() {
  WorkerKey key;
  {
    absl::MutexLock lock(&mu_);
    if (ended_) return false;
    ended_ = true;
    key = key_;
  }
  if (key == 0) return false;
  Remove(key);
  return true;
}

void WorkerProtocol::Remove(WorkerKey key) {
  router_->WakeWatchers(scheduler_->RemoveWorker(key));
  router_->RemoveWorker(key);
  router_->Pump();
}

std::string WorkerProtocol::worker_id() const {
  absl::MutexLock lock(&mu_);
  return worker_id_;
}

}  // namespace qfarm::coordinator
