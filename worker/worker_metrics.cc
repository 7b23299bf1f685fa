#include "worker/worker_metrics.h"

#include "common/metrics.h"
#include "common/task_spec.h"

namespace qfarm::worker {

std::vector<prometheus::MetricFamily> WorkerMetrics::Collect() const {
  using prometheus::MetricType;
  const WorkerStats stats = link_->Stats();
  const std::string mode(executors::ModeName(link_->options().mode));
  const std::string id = link_->options().id;
  std::vector<prometheus::MetricFamily> out;

  auto finished = Family("qfarm_worker_tasks_total",
                         "Tasks this worker finished, by kind and state.",
                         MetricType::Counter);
  for (const auto& [kind, counts] : stats.finished) {
    for (int state = 1; state < 8; ++state) {
      const uint64_t n = counts[state];
      if (n == 0) continue;
      finished.metric.push_back(CounterMetric(
          static_cast<double>(n),
          {{"kind", kind},
           {"state",
            std::string(TaskStateName(static_cast<v1::TaskState>(state)))},
           {"mode", mode}}));
    }
  }
  out.push_back(std::move(finished));

  auto in_flight =
      Family("qfarm_worker_in_flight", "Tasks running now.", MetricType::Gauge);
  in_flight.metric.push_back(
      GaugeMetric(stats.in_flight, {{"worker", id}, {"mode", mode}}));
  out.push_back(std::move(in_flight));

  auto slots = Family("qfarm_worker_slots", "Tasks it may run at once.",
                      MetricType::Gauge);
  slots.metric.push_back(
      GaugeMetric(link_->options().slots, {{"worker", id}, {"mode", mode}}));
  out.push_back(std::move(slots));

  auto connected = Family("qfarm_worker_connected",
                          "1 while the stream to the coordinator is open.",
                          MetricType::Gauge);
  connected.metric.push_back(GaugeMetric(stats.connected ? 1 : 0));
  out.push_back(std::move(connected));

  auto run = Family("qfarm_worker_task_run_seconds",
                    "Started to finished, per task.", MetricType::Histogram);
  run.metric.push_back(HistogramMetric(stats.run_seconds, {{"mode", mode}}));
  out.push_back(std::move(run));
  return out;
}

}  // namespace qfarm::worker
