// What a worker's liveness probe reports: whether the worker's own loop
// still turns, and whether it has reached a coordinator lately.
//
// The link (WorkerLink) ticks it from its loop: the writer at least every
// kLivenessTick while connected, the reconnect loop at every attempt. It
// says when a coordinator welcomes it and when that stream ends. Check() is
// OK unless the loop has not ticked for `stall_limit`, or no coordinator
// has been connected for `unreachable_grace` (since the start, or since the
// last stream ended).
//
//   Liveness liveness(Clock::Real(), {.unreachable_grace = absl::Minutes(5)});
//   options.liveness = &liveness;          // WorkerOptions
//   HealthServer::Start(listen, [&] { return liveness.Check(); });
//
// Thread-safe. It has its own lock, so a wedged link cannot block a probe:
// the link only stops ticking.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace qfarm::worker {

// How often a connected link's writer ticks, at the least.
inline constexpr absl::Duration kLivenessTick = absl::Seconds(1);

class Liveness {
 public:
  struct Options {
    // Longer without a tick: the loop is stuck. Well above what a
    // connection attempt may take (gRPC gives up connecting after 20 s)
    // and the longest reconnect backoff (5 s).
    absl::Duration stall_limit = absl::Seconds(60);
    // Longer without a coordinator: unreachable. InfiniteDuration: never.
    absl::Duration unreachable_grace = absl::Minutes(5);
  };

  // `clock` is not owned and must outlive this. The grace starts now.
  Liveness(Clock* clock, Options options);

  // The loop made progress.
  void Tick();
  // A coordinator welcomed the worker (true), or its stream ended (false).
  void SetConnected(bool connected);

  // OK, or UNAVAILABLE saying what is wrong.
  absl::Status Check() const;

 private:
  Clock* const clock_;
  const Options options_;
  mutable absl::Mutex mu_;
  absl::Time last_tick_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  // When the worker was last known to have no coordinator: the start, or
  // when the last stream ended.
  absl::Time unconnected_since_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qfarm::worker
