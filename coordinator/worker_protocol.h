// The coordinator's side of one worker stream's protocol, without gRPC: what
// each WorkerMessage read from the stream does (see
// proto/qfarm/v1/worker_link.proto), and what the end of the stream does.
// WorkerLinkService's stream reactor feeds it; tests and fuzz/ drive it with
// a fake WorkerChannel.
//
//   WorkerProtocol protocol(&scheduler, &router, peer);
//   absl::Status s = protocol.OnMessage(message, [&](WorkerKey key,
//                                                    const std::string& id) {
//     QueueWelcome(id);   // before any task can be routed to the stream
//     return channel;     // what the router sends this worker's tasks to
//   });
//   if (!s.ok()) { EndStream(s); protocol.OnEnd(); }
//
// Rules: the first message is a hello (FAILED_PRECONDITION otherwise) with
// slots within 1..kMaxWorkerSlots (INVALID_ARGUMENT otherwise); a second
// hello is FAILED_PRECONDITION; a message from a worker the scheduler
// declared dead is UNAVAILABLE; a result for a task the worker was never
// given is FAILED_PRECONDITION naming it (nothing of it recorded). Every
// message counts as a heartbeat; its results are recorded (watchers woken),
// then its credits granted and the router pumped. After an error the stream
// must end: call OnEnd() and no more OnMessage().
//
// Thread-safe as a stream uses it: OnMessage() calls come one at a time;
// OnEnd() may come from any thread at any time, also during OnMessage()
// (inside it, too: the router closes a channel it cannot take).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/router.h"
#include "coordinator/scheduler.h"
#include "qfarm/v1/worker_link.pb.h"

namespace qfarm::coordinator {

inline constexpr uint32_t kMaxWorkerSlots = 1'000'000;

class WorkerProtocol {
 public:
  // Called once, on the hello, with the worker's key and id (the hello's,
  // or "worker-<key>" when empty): returns the channel the router routes
  // this worker's tasks and cancellations to.
  using OnRegistered = absl::FunctionRef<std::shared_ptr<WorkerChannel>(
      WorkerKey key, const std::string& worker_id)>;

  // `scheduler` and `router` are not owned and must outlive this.
  WorkerProtocol(Scheduler* scheduler, Router* router, std::string peer)
      : scheduler_(scheduler), router_(router), peer_(std::move(peer)) {}
  WorkerProtocol(const WorkerProtocol&) = delete;
  WorkerProtocol& operator=(const WorkerProtocol&) = delete;

  // Handles one message; takes its results out of `message`. OK: read the
  // next one; otherwise end the stream with the status returned.
  absl::Status OnMessage(v1::WorkerMessage& message, OnRegistered registered);

  // The stream ended: a registered worker is removed (its tasks go back to
  // the queue) and the router forgets it. Idempotent. Returns whether a
  // worker was removed.
  bool OnEnd();

  // Empty before the hello.
  std::string worker_id() const;

 private:
  absl::Status OnHello(const v1::WorkerHello& hello, OnRegistered registered);
  // Removes the worker from the scheduler and the router.
  void Remove(WorkerKey key);

  Scheduler* const scheduler_;
  Router* const router_;
  const std::string peer_;
  // Set by the hello; read only by the reads, which come one at a time.
  WorkerKey read_key_ = 0;

  mutable absl::Mutex mu_;
  // The registered worker, published once the router knows it: OnEnd()
  // removes it.
  WorkerKey key_ ABSL_GUARDED_BY(mu_) = 0;
  std::string worker_id_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace qfarm::coordinator
