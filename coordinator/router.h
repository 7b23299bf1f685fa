// Routes the scheduler's decisions to the open streams: task batches and
// cancellations to worker streams, wake-ups to job watchers.
//
// Thread-safe. Streams are held by shared_ptr, so a stream that ends while a
// message is routed to it stays valid; it drops what arrives after its end.
#pragma once

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/scheduler.h"

namespace qfarm::coordinator {

// The coordinator's side of one worker's stream.
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;
  // Queues tasks for sending. Dropped if the stream has ended.
  virtual void SendTasks(
      google::protobuf::RepeatedPtrField<v1::Assignment> assignments) = 0;
  // Queues a cancellation of the job's tasks on this worker.
  virtual void SendCancel(JobId job) = 0;
  // Ends the stream with `status` after queued messages are sent.
  virtual void Close(const absl::Status& status) = 0;
};

// One client's WatchJob stream.
class JobWatcher {
 public:
  virtual ~JobWatcher() = default;
  // New results may be available.
  virtual void Wake() = 0;
  // Ends the stream with `status`.
  virtual void Close(const absl::Status& status) = 0;
};

class Router {
 public:
  explicit Router(Scheduler* scheduler) : scheduler_(scheduler) {}
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  void AddWorker(WorkerKey key, std::shared_ptr<WorkerChannel> channel);
  void RemoveWorker(WorkerKey key);
  // Ends one worker's stream (declared dead) with `status`.
  void CloseWorker(WorkerKey key, const absl::Status& status);
  void AddWatcher(JobId job, std::shared_ptr<JobWatcher> watcher);
  void RemoveWatcher(JobId job, const JobWatcher* watcher);

  // Takes the scheduler's dispatches and queues each on its worker's stream.
  void Pump();
  // Wakes the watchers of these jobs.
  void WakeWatchers(const std::vector<JobId>& jobs);
  // Tells the workers of a cancelled job to stop its tasks.
  void SendCancel(JobId job, const std::vector<WorkerKey>& workers);
  // Ends every stream (coordinator shutting down); later additions are
  // closed at once.
  void CloseAll(const absl::Status& status);

 private:
  Scheduler* const scheduler_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<WorkerKey, std::shared_ptr<WorkerChannel>> workers_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<JobId, std::vector<std::shared_ptr<JobWatcher>>> watchers_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace qfarm::coordinator
