#include "worker/liveness.h"

#include "gtest/gtest.h"

namespace qfarm::worker {
namespace {

constexpr Liveness::Options kOptions = {.stall_limit = absl::Seconds(60),
                                        .unreachable_grace = absl::Seconds(30)};

TEST(LivenessTest, HealthyWhileTheLoopTicksAndACoordinatorIsConnected) {
  FakeClock clock;
  Liveness liveness(&clock, kOptions);
  liveness.SetConnected(true);
  for (int i = 0; i < 10; ++i) {
    clock.Advance(absl::Seconds(59));
    liveness.Tick();
    EXPECT_TRUE(liveness.Check().ok()) << i << ": " << liveness.Check();
  }
}

TEST(LivenessTest, AStuckLoopFailsAfterTheStallLimit) {
  FakeClock clock;
  Liveness liveness(&clock, kOptions);
  liveness.SetConnected(true);  // Connected throughout: only the loop stops.
  liveness.Tick();
  clock.Advance(absl::Seconds(60));
  EXPECT_TRUE(liveness.Check().ok());
  clock.Advance(absl::Seconds(1));
  const absl::Status stuck = liveness.Check();
  EXPECT_EQ(stuck.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(stuck.message(), "the worker's loop has not turned for 1m1s");
  // It turns again: healthy again.
  liveness.Tick();
  EXPECT_TRUE(liveness.Check().ok());
}

TEST(LivenessTest, NoCoordinatorSinceTheStartFailsAfterTheGrace) {
  FakeClock clock;
  Liveness liveness(&clock, kOptions);
  clock.Advance(absl::Seconds(30));
  liveness.Tick();
  EXPECT_TRUE(liveness.Check().ok());
  clock.Advance(absl::Seconds(1));
  liveness.Tick();  // The loop turns (redials); no coordinator answers.
  const absl::Status unreachable = liveness.Check();
  EXPECT_EQ(unreachable.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(unreachable.message(), "no coordinator for 31s");
}

TEST(LivenessTest, TheGraceCountsFromTheEndOfTheLastConnection) {
  FakeClock clock;
  Liveness liveness(&clock, kOptions);
  clock.Advance(absl::Seconds(20));
  liveness.SetConnected(true);
  clock.Advance(absl::Seconds(40));  // Connected: no grace runs.
  liveness.Tick();
  EXPECT_TRUE(liveness.Check().ok());
  liveness.SetConnected(false);
  clock.Advance(absl::Seconds(30));
  liveness.Tick();
  EXPECT_TRUE(liveness.Check().ok());
  liveness.SetConnected(false);  // Another failed attempt: still from then.
  clock.Advance(absl::Seconds(1));
  liveness.Tick();
  EXPECT_FALSE(liveness.Check().ok());
  liveness.SetConnected(true);
  EXPECT_TRUE(liveness.Check().ok());
}

TEST(LivenessTest, AnInfiniteGraceNeverFailsForWantOfACoordinator) {
  FakeClock clock;
  Liveness liveness(&clock, {.unreachable_grace = absl::InfiniteDuration()});
  clock.Advance(absl::Hours(24 * 365));
  liveness.Tick();
  EXPECT_TRUE(liveness.Check().ok());
}

}  // namespace
}  // namespace qfarm::worker
