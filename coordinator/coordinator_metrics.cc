#include "coordinator/coordinator_metrics.h"

#include "common/metrics.h"
#include "common/task_spec.h"

namespace qfarm::coordinator {

std::vector<prometheus::MetricFamily> CoordinatorMetrics::Collect() const {
  using prometheus::MetricType;
  const SchedulerStats stats = scheduler_->Stats();
  const std::vector<v1::WorkerInfo> workers = scheduler_->ListWorkers();
  std::vector<prometheus::MetricFamily> out;

  auto queue = Family("qfarm_queue_depth",
                      "Tasks waiting for a worker (retries included).",
                      MetricType::Gauge);
  queue.metric.push_back(GaugeMetric(static_cast<double>(stats.queued)));
  out.push_back(std::move(queue));

  auto retained = Family(
      "qfarm_finished_jobs",
      "Finished jobs retained, by where their results are: in memory, or on "
      "disk only (read back from the journal when asked for).",
      MetricType::Gauge);
  retained.metric.push_back(
      GaugeMetric(static_cast<double>(stats.finished_jobs - stats.stored_jobs),
                  {{"results", "memory"}}));
  retained.metric.push_back(GaugeMetric(static_cast<double>(stats.stored_jobs),
                                        {{"results", "disk"}}));
  out.push_back(std::move(retained));

  auto connected = Family("qfarm_workers_connected", "Worker streams open.",
                          MetricType::Gauge);
  connected.metric.push_back(GaugeMetric(static_cast<double>(workers.size())));
  out.push_back(std::move(connected));

  auto in_flight = Family("qfarm_worker_in_flight",
                          "Tasks running on each worker.", MetricType::Gauge);
  auto slots = Family("qfarm_worker_slots", "Slots each worker declared.",
                      MetricType::Gauge);
  for (const v1::WorkerInfo& w : workers) {
    in_flight.metric.push_back(GaugeMetric(
        w.in_flight(), {{"worker", w.worker_id()}, {"mode", w.mode()}}));
    slots.metric.push_back(GaugeMetric(
        w.slots(), {{"worker", w.worker_id()}, {"mode", w.mode()}}));
  }
  out.push_back(std::move(in_flight));
  out.push_back(std::move(slots));

  auto finished =
      Family("qfarm_tasks_finished_total",
             "Final results recorded, by kind and state.", MetricType::Counter);
  for (const auto& [kind, counts] : stats.finished) {
    for (int state = 1; state < 8; ++state) {
      const uint64_t n = counts[state];
      if (n == 0) continue;
      finished.metric.push_back(CounterMetric(
          static_cast<double>(n),
          {{"kind", kind},
           {"state",
            std::string(TaskStateName(static_cast<v1::TaskState>(state)))}}));
    }
  }
  out.push_back(std::move(finished));

  auto retried = Family("qfarm_tasks_retried_total",
                        "Tasks dispatched again after their worker was lost.",
                        MetricType::Counter);
  retried.metric.push_back(CounterMetric(static_cast<double>(stats.retried)));
  out.push_back(std::move(retried));

  auto latency = Family("qfarm_task_latency_seconds", "Queued to final result.",
                        MetricType::Histogram);
  latency.metric.push_back(HistogramMetric(stats.latency));
  out.push_back(std::move(latency));

  if (journal_ != nullptr) {
    const JournalStats js = journal_->stats();
    auto commits = Family("qfarm_journal_commit_seconds",
                          "Journal group write and commit (fsync) time.",
                          MetricType::Histogram);
    commits.metric.push_back(HistogramMetric(js.commit_seconds));
    out.push_back(std::move(commits));
    auto appends =
        Family("qfarm_journal_appends_total",
               "Records appended to the journal.", MetricType::Counter);
    appends.metric.push_back(CounterMetric(static_cast<double>(js.appends)));
    out.push_back(std::move(appends));
  }
  if (farm_ != nullptr) {
    auto clients = Family("qfarm_clients_tracked",
                          "Clients whose unfinished jobs are counted against "
                          "--max-jobs-per-client (finished ones until the "
                          "next sweep).",
                          MetricType::Gauge);
    clients.metric.push_back(
        GaugeMetric(static_cast<double>(farm_->tracked_clients())));
    out.push_back(std::move(clients));
    const SessionGauges& sessions = farm_->session_gauges();
    auto refusals = Family("qfarm_session_refusals_queued",
                           "Refusals Session calls hold for their clients.",
                           MetricType::Gauge);
    refusals.metric.push_back(
        GaugeMetric(static_cast<double>(sessions.queued_refusals.load())));
    out.push_back(std::move(refusals));
    auto paused = Family("qfarm_sessions_paused",
                         "Session calls not reading requests until their "
                         "client reads its refusals.",
                         MetricType::Gauge);
    paused.metric.push_back(
        GaugeMetric(static_cast<double>(sessions.paused_reads.load())));
    out.push_back(std::move(paused));
  }
  return out;
}

}  // namespace qfarm::coordinator
