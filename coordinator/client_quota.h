// Bounds how many unfinished jobs each client may have at once.
//
//   ClientQuota quota(1000, [&](std::vector<JobId> jobs) {
//     return scheduler.Unfinished(std::move(jobs));
//   });
//   RETURN_IF_ERROR(quota.Reserve(client));   // before submitting
//   absl::StatusOr<JobId> job = Submit(...);
//   job.ok() ? quota.Commit(client, *job) : quota.Cancel(client);
//
// A reservation holds a place from Reserve() to Commit() or Cancel(), so
// concurrent submits of one client cannot pass the bound together.
// Clients come and go: once the map has doubled since the last sweep (and
// holds kSweepAt clients or more), Reserve() forgets every finished job and
// every client left with no job and no reservation, so the map stays under
// max(kSweepAt, 2 x the clients with unfinished jobs).
// Thread-safe; `unfinished` is called without the quota's lock held.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/scheduler.h"

namespace qfarm::coordinator {

class ClientQuota {
 public:
  // Returns those of the jobs that have not finished.
  using UnfinishedFilter =
      std::function<std::vector<JobId>(std::vector<JobId>)>;

  // `max_per_client` 0: no bound (Reserve() always succeeds, nothing is
  // tracked).
  ClientQuota(size_t max_per_client, UnfinishedFilter unfinished)
      : max_(max_per_client), unfinished_(std::move(unfinished)) {}

  // Holds a place for one more job of `client`. RESOURCE_EXHAUSTED when
  // its unfinished jobs and reservations already fill the bound; finished
  // jobs are forgotten first.
  absl::Status Reserve(const std::string& client);
  // The reserved job was accepted as `job`.
  void Commit(const std::string& client, JobId job);
  // The reserved job was refused.
  void Cancel(const std::string& client);

  // The fewest clients tracked that start a sweep.
  static constexpr size_t kSweepAt = 1024;
  // Clients tracked now (for tests and metrics).
  size_t tracked_clients() const;

 private:
  struct Client {
    std::vector<JobId> jobs;
    size_t reserved = 0;
  };

  // Forgets finished jobs, and clients left with no job and no
  // reservation. Called by the Reserve() that set sweeping_.
  void Sweep() ABSL_LOCKS_EXCLUDED(mu_);

  const size_t max_;
  const UnfinishedFilter unfinished_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Client> clients_ ABSL_GUARDED_BY(mu_);
  // The map's size that starts the next sweep.
  size_t sweep_at_ ABSL_GUARDED_BY(mu_) = kSweepAt;
  bool sweeping_ ABSL_GUARDED_BY(mu_) = false;  // A Sweep() is under way.
};

}  // namespace qfarm::coordinator
