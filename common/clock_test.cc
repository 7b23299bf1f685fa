#include "common/clock.h"

#include <thread>

#include "absl/time/clock.h"
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

TEST(FakeClockTest, AwaitEndsWhenTheClockReachesTheDeadline) {
  FakeClock clock(absl::FromUnixSeconds(100));
  absl::Mutex mu;
  bool never = false;
  bool returned = true;
  bool done = false;
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    returned = clock.AwaitWithDeadline(&mu, absl::Condition(&never),
                                       absl::FromUnixSeconds(110));
    done = true;
  });
  // Only once it waits: then an advance short of the deadline keeps it.
  while (clock.waiters() == 0) std::this_thread::yield();
  clock.Advance(absl::Seconds(9));
  {
    absl::MutexLock lock(&mu);
    EXPECT_FALSE(done);
  }
  clock.Advance(absl::Seconds(1));
  waiter.join();
  EXPECT_FALSE(returned);
  EXPECT_EQ(clock.waiters(), 0);
}

TEST(FakeClockTest, AwaitEndsWhenTheConditionHolds) {
  FakeClock clock;
  absl::Mutex mu;
  bool ready = false;
  bool returned = false;
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    returned = clock.AwaitWithDeadline(&mu, absl::Condition(&ready),
                                       clock.Now() + absl::Hours(1));
  });
  while (clock.waiters() == 0) std::this_thread::yield();
  {
    absl::MutexLock lock(&mu);
    ready = true;
  }
  waiter.join();
  EXPECT_TRUE(returned);
}

TEST(RealClockTest, AwaitWaitsOutARealDeadline) {
  absl::Mutex mu;
  bool never = false;
  absl::MutexLock lock(&mu);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(Clock::Real()->AwaitWithDeadline(
      &mu, absl::Condition(&never), start + absl::Milliseconds(20)));
  EXPECT_GE(absl::Now(), start + absl::Milliseconds(20));
}

TEST(RealClockTest, IsNotBeforeFakeEpoch) {
  EXPECT_GT(Clock::Real()->Now(), absl::FromUnixSeconds(1'600'000'000));
  EXPECT_EQ(Clock::Real(), Clock::Real());
}

}  // namespace
}  // namespace qfarm
