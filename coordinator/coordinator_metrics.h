// The coordinator's Prometheus metrics, computed from the scheduler (and
// journal) at each scrape: queue depth, workers connected, in flight per
// worker, tasks finished by kind and state, retries, task latency, journal
// commits.
#pragma once

#include <prometheus/collectable.h>

#include "coordinator/journal.h"
#include "coordinator/scheduler.h"

namespace qfarm::coordinator {

// Thread-safe. `journal` may be null (--ephemeral); neither is owned.
class CoordinatorMetrics : public prometheus::Collectable {
 public:
  CoordinatorMetrics(const Scheduler* scheduler, const Journal* journal)
      : scheduler_(scheduler), journal_(journal) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Scheduler* const scheduler_;
  const Journal* const journal_;
};

}  // namespace qfarm::coordinator
