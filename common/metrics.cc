#include "common/metrics.h"

#include <prometheus/exposer.h>

#include <algorithm>
#include <exception>
#include <limits>

#include "absl/strings/str_cat.h"

namespace qfarm {

prometheus::ClientMetric HistogramMetric(
    const HistogramData& data,
    std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.histogram.sample_count = data.count();
  metric.histogram.sample_sum = data.sum();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < data.bounds().size(); ++i) {
    cumulative += data.counts()[i];
    metric.histogram.bucket.push_back({cumulative, data.bounds()[i]});
  }
  cumulative += data.counts().back();
  metric.histogram.bucket.push_back(
      {cumulative, std::numeric_limits<double>::infinity()});
  return metric;
}

prometheus::MetricFamily Family(std::string name, std::string help,
                                prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

prometheus::ClientMetric GaugeMetric(
    double value, std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  return metric;
}

prometheus::ClientMetric CounterMetric(
    double value, std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.counter.value = value;
  return metric;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen,
    std::shared_ptr<prometheus::Collectable> collectable) {
  std::unique_ptr<MetricsServer> server(new MetricsServer);
  // prometheus-cpp reports bind failures by exception: caught here, at the
  // edge, and turned into a status.
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("--metrics-listen=", listen, ": ", e.what()));
  }
  std::vector<int> ports = server->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("--metrics-listen=", listen, ": not listening"));
  }
  server->port_ = ports[0];
  server->collectable_ = std::move(collectable);
  server->exposer_->RegisterCollectable(server->collectable_);
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace qfarm
