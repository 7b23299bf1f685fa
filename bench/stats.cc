#include "bench/stats.h"

#include <algorithm>
#include <cmath>

namespace qfarm::bench {

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  // Rank 1..n; the small epsilon keeps 99% of 100 at rank 99, not 100.
  int64_t rank = static_cast<int64_t>(std::ceil(p / 100.0 * n - 1e-9));
  rank = std::clamp<int64_t>(rank, 1, static_cast<int64_t>(sorted.size()));
  return sorted[static_cast<size_t>(rank - 1)];
}

LatencySummary SummarizeLatencies(std::vector<int64_t> values) {
  LatencySummary summary;
  if (values.empty()) return summary;
  std::sort(values.begin(), values.end());
  summary.count = static_cast<int64_t>(values.size());
  summary.p50 = Percentile(values, 50);
  summary.p99 = Percentile(values, 99);
  summary.max = values.back();
  return summary;
}

int64_t MaxConcurrency(const std::vector<Interval>& intervals) {
  std::vector<int64_t> starts;
  std::vector<int64_t> ends;
  starts.reserve(intervals.size());
  ends.reserve(intervals.size());
  bool any_started = false;
  for (const Interval& interval : intervals) {
    if (interval.start_us <= 0) continue;
    any_started = true;
    if (interval.finish_us <= interval.start_us) continue;
    starts.push_back(interval.start_us);
    ends.push_back(interval.finish_us);
  }
  std::sort(starts.begin(), starts.end());
  std::sort(ends.begin(), ends.end());
  // Sweep: an end at the same instant as a start comes first (half-open).
  int64_t running = 0;
  int64_t most = any_started ? 1 : 0;
  size_t e = 0;
  for (int64_t start : starts) {
    while (e < ends.size() && ends[e] <= start) {
      --running;
      ++e;
    }
    most = std::max(most, ++running);
  }
  return most;
}

}  // namespace qfarm::bench
