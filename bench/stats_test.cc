#include "bench/stats.h"

#include <vector>

#include "gtest/gtest.h"

namespace qfarm::bench {
namespace {

TEST(PercentileTest, NearestRank) {
  std::vector<int64_t> sorted;
  for (int64_t i = 1; i <= 100; ++i) sorted.push_back(i);
  EXPECT_EQ(Percentile(sorted, 50), 50);
  EXPECT_EQ(Percentile(sorted, 99), 99);
  EXPECT_EQ(Percentile(sorted, 100), 100);
  EXPECT_EQ(Percentile(sorted, 0.5), 1);
}

TEST(PercentileTest, SmallAndEmpty) {
  EXPECT_EQ(Percentile({}, 50), 0);
  EXPECT_EQ(Percentile({7}, 50), 7);
  EXPECT_EQ(Percentile({7}, 99), 7);
  // Ten values: p50 is the 5th, p99 the 10th.
  const std::vector<int64_t> ten = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(Percentile(ten, 50), 5);
  EXPECT_EQ(Percentile(ten, 99), 10);
}

TEST(SummarizeLatenciesTest, SortsAndSummarizes) {
  const LatencySummary s = SummarizeLatencies({30, 10, 20, 40});
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(s.p50, 20);
  EXPECT_EQ(s.p99, 40);
  EXPECT_EQ(s.max, 40);
  EXPECT_EQ(SummarizeLatencies({}).count, 0);
}

TEST(MaxConcurrencyTest, CountsOverlaps) {
  // Three overlap at t=5; the fourth starts when the first two end.
  EXPECT_EQ(MaxConcurrency({{1, 10}, {2, 10}, {5, 20}, {10, 30}}), 3);
}

TEST(MaxConcurrencyTest, BackToBackDoNotOverlap) {
  EXPECT_EQ(MaxConcurrency({{1, 2}, {2, 3}, {3, 4}}), 1);
}

TEST(MaxConcurrencyTest, InstantTasksCountOnce) {
  // Echo tasks that start and finish within one microsecond.
  EXPECT_EQ(MaxConcurrency({{5, 5}, {5, 5}, {6, 6}}), 1);
  EXPECT_EQ(MaxConcurrency({{5, 5}, {1, 10}, {2, 10}}), 2);
}

TEST(MaxConcurrencyTest, IgnoresTasksThatNeverStarted) {
  EXPECT_EQ(MaxConcurrency({{0, 10}, {0, 10}, {3, 4}}), 1);
  EXPECT_EQ(MaxConcurrency({}), 0);
}

TEST(MaxConcurrencyTest, SeedShapedRun) {
  // Ten one-second sleeps on ten slots, all at once.
  std::vector<Interval> ten(10, Interval{1'000'000, 2'000'000});
  EXPECT_EQ(MaxConcurrency(ten), 10);
  // On three slots, in waves.
  std::vector<Interval> waves;
  for (int i = 0; i < 10; ++i) {
    const int64_t start = 1'000'000 * (1 + i / 3);
    waves.push_back({start, start + 1'000'000});
  }
  EXPECT_EQ(MaxConcurrency(waves), 3);
}

}  // namespace
}  // namespace qfarm::bench
