// The coordinator's Prometheus metrics, computed from the scheduler (and
// journal) at each scrape: queue depth, workers connected, in flight per
// worker, tasks finished by kind and state, retries, task latency, journal
// commits; from the client service, what it holds per client and session.
#pragma once

#include <prometheus/collectable.h>

#include "coordinator/farm_service.h"
#include "coordinator/journal.h"
#include "coordinator/scheduler.h"

namespace qfarm::coordinator {

// Thread-safe. `journal` (--ephemeral) and `farm` may be null; none is
// owned.
class CoordinatorMetrics : public prometheus::Collectable {
 public:
  CoordinatorMetrics(const Scheduler* scheduler, const Journal* journal,
                     const FarmService* farm = nullptr)
      : scheduler_(scheduler), journal_(journal), farm_(farm) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Scheduler* const scheduler_;
  const Journal* const journal_;
  const FarmService* const farm_;
};

}  // namespace qfarm::coordinator
