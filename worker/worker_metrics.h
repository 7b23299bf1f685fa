// A worker's Prometheus metrics, from WorkerLink::Stats() at each scrape:
// tasks finished by kind, state and mode; in flight; slots; connected; task
// run time.
#pragma once

#include <prometheus/collectable.h>

#include "worker/worker_link.h"

namespace qfarm::worker {

// Thread-safe; `link` is not owned and must outlive it.
class WorkerMetrics : public prometheus::Collectable {
 public:
  explicit WorkerMetrics(const WorkerLink* link) : link_(link) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const WorkerLink* const link_;
};

}  // namespace qfarm::worker
