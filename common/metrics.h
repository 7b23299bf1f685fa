// Prometheus metrics: a small histogram, family builders, and an HTTP
// endpoint (prometheus-cpp's Exposer) serving a Collectable at /metrics.
//
//   auto server = MetricsServer::Start("127.0.0.1:0", collectable);
//   // GET http://127.0.0.1:<(*server)->port()>/metrics
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/histogram.h"

namespace prometheus {
class Exposer;
}

namespace qfarm {

// A histogram ClientMetric with cumulative buckets (+Inf last).
prometheus::ClientMetric HistogramMetric(
    const HistogramData& data,
    std::vector<prometheus::ClientMetric::Label> labels = {});

prometheus::MetricFamily Family(std::string name, std::string help,
                                prometheus::MetricType type);
prometheus::ClientMetric GaugeMetric(
    double value, std::vector<prometheus::ClientMetric::Label> labels = {});
prometheus::ClientMetric CounterMetric(
    double value, std::vector<prometheus::ClientMetric::Label> labels = {});

// Serves /metrics over HTTP until destroyed.
class MetricsServer {
 public:
  // `listen` is HOST:PORT (port 0 picks one). UNAVAILABLE when it cannot
  // be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen,
      std::shared_ptr<prometheus::Collectable> collectable);
  ~MetricsServer();
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Collectable> collectable_;
  int port_ = 0;
};

}  // namespace qfarm
