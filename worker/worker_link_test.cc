// The link keeps its Liveness up to date: its loop ticks it while connected
// and while redialling, and it hears of each connection and of its end.
// Against an in-process coordinator; the link's time (and the liveness') is
// a FakeClock, so the test moves it past the limits.
#include "worker/worker_link.h"

#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "coordinator/coordinator_server.h"
#include "gtest/gtest.h"

namespace qfarm::worker {
namespace {

// Polls `done` for up to 10 s of real time: the link's threads act on
// their own after the fake clock moves.
template <typename F>
bool Eventually(F done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));  // Polling other threads.
  }
  return true;
}

// Moves `clock` on by `total` a second at a time, each step once one of
// the link's threads waits on it: a thread busy when the time jumps (a
// heartbeat being written) waits from the new time, so one big jump could
// slip past it. A second is the writer's longest wait while connected.
bool AdvanceStepwise(FakeClock& clock, absl::Duration total) {
  for (absl::Duration moved; moved < total; moved += absl::Seconds(1)) {
    if (!Eventually([&] { return clock.waiters() > 0; })) return false;
    clock.Advance(absl::Seconds(1));
  }
  return true;
}

TEST(WorkerLinkLivenessTest, TheLoopTicksAndConnectionsAreReported) {
  auto server =
      coordinator::CoordinatorServer::Start({.listen = "127.0.0.1:0"});
  ASSERT_TRUE(server.ok()) << server.status();
  FakeClock clock;
  Liveness liveness(&clock, {.stall_limit = absl::Seconds(60),
                             .unreachable_grace = absl::Seconds(30)});
  WorkerOptions options;
  options.coordinator = (*server)->address();
  options.slots = 1;
  options.id = "liveness-1";
  options.clock = &clock;
  options.liveness = &liveness;
  WorkerLink link(options);
  std::thread run([&link] { link.Run(); });

  // Welcomed: past the grace, still healthy.
  ASSERT_TRUE(Eventually([&] { return link.Stats().connected; }));
  ASSERT_TRUE(AdvanceStepwise(clock, absl::Seconds(31)));
  EXPECT_TRUE(Eventually([&] { return liveness.Check().ok(); }))
      << liveness.Check();
  // Past the stall limit: the writer ticks as the time moves.
  ASSERT_TRUE(AdvanceStepwise(clock, absl::Seconds(61)));
  EXPECT_TRUE(Eventually([&] { return liveness.Check().ok(); }))
      << liveness.Check();

  // The coordinator goes: the loop still turns (it redials), but after the
  // grace there is no coordinator.
  (*server)->Shutdown();
  ASSERT_TRUE(Eventually([&] { return !link.Stats().connected; }));
  ASSERT_TRUE(AdvanceStepwise(clock, absl::Seconds(31)));
  EXPECT_TRUE(Eventually([&] {
    return absl::StrContains(liveness.Check().message(), "no coordinator");
  })) << liveness.Check();

  link.Stop();
  run.join();
}

}  // namespace
}  // namespace qfarm::worker
