#include "common/clock.h"

#include "gtest/gtest.h"

namespace qfarm {
namespace {

TEST(FakeClockTest, MovesOnlyWhenTold) {
  FakeClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(clock.NowMicros(), 101'500'000);
  clock.Set(absl::FromUnixSeconds(7));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(7));
}

TEST(RealClockTest, IsNotBeforeFakeEpoch) {
  EXPECT_GT(Clock::Real()->Now(), absl::FromUnixSeconds(1'600'000'000));
  EXPECT_EQ(Clock::Real(), Clock::Real());
}

}  // namespace
}  // namespace qfarm
