#include "common/clock.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace qfarm {
namespace {

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu->AwaitWithDeadline(condition, deadline);
  }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock;
  return clock;
}

absl::Time FakeClock::Now() const {
  return absl::FromUnixMicros(now_us_.load(std::memory_order_acquire));
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu,
                                  const absl::Condition& condition,
                                  absl::Time deadline) const {
  const int64_t deadline_us = absl::ToUnixMicros(deadline);
  struct State {
    const FakeClock* clock;
    const absl::Condition* condition;
    int64_t deadline_us;
  } state{this, &condition, deadline_us};
  // Re-evaluated under `mu` whenever `mu` is released, which WakeWaiters()
  // does after the time moved.
  const absl::Condition done(
      +[](State* s) {
        return s->condition->Eval() ||
               s->clock->now_us_.load(std::memory_order_acquire) >=
                   s->deadline_us;
      },
      &state);
  {
    absl::MutexLock lock(&mu_);
    waiting_.push_back(mu);
  }
  mu->Await(done);
  {
    absl::MutexLock lock(&mu_);
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), mu));
  }
  return condition.Eval();
}

void FakeClock::Advance(absl::Duration d) {
  now_us_.fetch_add(absl::ToInt64Microseconds(d), std::memory_order_acq_rel);
  WakeWaiters();
}

void FakeClock::Set(absl::Time t) {
  now_us_.store(absl::ToUnixMicros(t), std::memory_order_release);
  WakeWaiters();
}

int FakeClock::waiters() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiting_.size());
}

void FakeClock::WakeWaiters() {
  std::vector<absl::Mutex*> waiting;
  {
    absl::MutexLock lock(&mu_);
    waiting = waiting_;
  }
  // Releasing a mutex makes absl re-evaluate the conditions awaited on it.
  for (absl::Mutex* mu : waiting) {
    mu->Lock();
    mu->Unlock();
  }
}

}  // namespace qfarm
