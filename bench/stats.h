// The arithmetic of `qfarm bench`: percentiles of task latencies and the
// largest number of tasks that ran at once.
//
//   LatencySummary s = SummarizeLatencies(std::move(latencies_us));
//   int64_t most = MaxConcurrency(intervals);
//
// Pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <vector>

namespace qfarm::bench {

// The p-th percentile (0 < p <= 100) of `sorted` (ascending) by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. 0 for an empty vector.
int64_t Percentile(const std::vector<int64_t>& sorted, double p);

struct LatencySummary {
  int64_t count = 0;
  int64_t p50 = 0;
  int64_t p99 = 0;
  int64_t max = 0;
};

// Sorts `values` and takes their p50, p99 and maximum.
LatencySummary SummarizeLatencies(std::vector<int64_t> values);

// When one task ran, in microseconds. Tasks that never started have
// start_us 0 and are ignored.
struct Interval {
  int64_t start_us = 0;
  int64_t finish_us = 0;
};

// The most intervals that cover one instant, an interval covering
// [start_us, finish_us): one that finished at the instant another started
// does not overlap it. A task that finished within the microsecond it
// started (an echo) took no measurable time: such tasks count as 1 when no
// longer ones overlap (something ran), never more.
int64_t MaxConcurrency(const std::vector<Interval>& intervals);

}  // namespace qfarm::bench
