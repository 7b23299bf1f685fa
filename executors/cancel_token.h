// Cancellation of running tasks: a flag per job that tasks poll or wait on.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace qfarm::executors {

// A one-way cancellation flag that running tasks poll or wait on.
// Thread-safe. Waiters sleep on the flag itself (a Linux futex), not on a
// shared lock: the thousands of threads of a big thread pool, all sleeping
// on one job's token, wake independently.
class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Sets the flag and wakes every WaitFor(). Idempotent.
  void Cancel();

  bool cancelled() const {
    return cancelled_.load(std::memory_order_acquire) != 0;
  }

  // Blocks until cancelled or `timeout` passed; true if cancelled.
  bool WaitFor(absl::Duration timeout) const;

 private:
  // 0, then 1 once cancelled; the futex word.
  mutable std::atomic<uint32_t> cancelled_{0};
};

// One CancelToken per job, shared by the job's unfinished tasks, so that
// Cancel(job) reaches exactly the tasks acquired before it. Tasks acquired
// after a Cancel() get a fresh token. Entries live while the job has
// unfinished tasks. Thread-safe.
class JobCancellations {
 public:
  JobCancellations() = default;
  JobCancellations(const JobCancellations&) = delete;
  JobCancellations& operator=(const JobCancellations&) = delete;

  // The token for `tasks` new tasks of `job_id`. Pair with Release() of as
  // many.
  std::shared_ptr<CancelToken> Acquire(uint64_t job_id, int64_t tasks = 1);

  // `tasks` tasks that acquired `token` for `job_id` are finished.
  void Release(uint64_t job_id, const std::shared_ptr<CancelToken>& token,
               int64_t tasks = 1);

  // Cancels the job's current token and forgets it. Returns it, or null if
  // the job has no unfinished tasks.
  std::shared_ptr<CancelToken> Cancel(uint64_t job_id);

  // Jobs with unfinished tasks.
  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<CancelToken> token;
    int64_t tasks = 0;
  };

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> jobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qfarm::executors
