// Time, injected. Everything in qfarm that reads the time or waits for it
// (timestamps, heartbeats, expiry, retry backoff, the coordinator's tick
// loop) asks a Clock, so tests substitute FakeClock and move time
// explicitly instead of sleeping.
//
//   absl::MutexLock lock(&mu_);
//   clock->AwaitWithDeadline(&mu_, absl::Condition(&stopping_),
//                            clock->Now() + absl::Seconds(1));
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace qfarm {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  int64_t NowMicros() const { return absl::ToUnixMicros(Now()); }

  // Waits, with `mu` held on entry and on return (released while waiting),
  // until `condition` holds or this clock reaches `deadline`. Returns
  // whether `condition` holds. `condition` is evaluated under `mu`, as by
  // absl::Mutex::Await.
  virtual bool AwaitWithDeadline(absl::Mutex* mu,
                                 const absl::Condition& condition,
                                 absl::Time deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;

  // The process-wide real clock. Never null, never deleted.
  static Clock* Real();
};

// A clock that moves only when told to. A wait on it ends when its
// condition holds or when Advance()/Set() reach its deadline, never by
// itself. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_us_(absl::ToUnixMicros(start)) {}

  absl::Time Now() const override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Advance(absl::Duration d);
  void Set(absl::Time t);

  // Waits in AwaitWithDeadline() now: lets a test advance the clock only
  // once the code under test waits on it.
  int waiters() const;

 private:
  // Wakes every waiter to look at the time again.
  void WakeWaiters();

  std::atomic<int64_t> now_us_;
  mutable absl::Mutex mu_;
  // The mutexes waiters wait under, one entry per waiter.
  mutable std::vector<absl::Mutex*> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qfarm
