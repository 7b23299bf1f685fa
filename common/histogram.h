// Bucket counts of observed values, for latency metrics. Thread-compatible.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace qfarm {

class HistogramData {
 public:
  // Upper bounds in seconds for task and write latencies.
  static std::vector<double> LatencyBounds() {
    return {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1,
            0.5,    1,      5,     10,    60,   300};
  }

  explicit HistogramData(std::vector<double> bounds = LatencyBounds())
      : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

  void Observe(double value) {
    const size_t bucket = static_cast<size_t>(
        std::lower_bound(bounds_.begin(), bounds_.end(), value) -
        bounds_.begin());
    ++counts_[bucket];
    sum_ += value;
    ++count_;
  }

  const std::vector<double>& bounds() const { return bounds_; }
  // Per bucket (not cumulative), then one for values over the last bound.
  const std::vector<uint64_t>& counts() const { return counts_; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace qfarm
