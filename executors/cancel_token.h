// Cancellation of running tasks: a flag per job that tasks poll or wait on.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "qfarm/kinds.h"

namespace qfarm::executors {

// The token handlers see (qfarm/kinds.h).
using CancelToken = ::qfarm::CancelToken;

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
