// What `qfarm bench` measured, one Row per method, and the ways it prints
// them: a table for the terminal, JSON, CSV and an SVG bar chart.
//
//   Report report{.title = "seed: 10 x sleep 1s", .cores = 2};
//   report.rows.push_back(row);
//   std::cout << FormatTable(report);
//   WriteFile("chart.svg", FormatSvg(report, ChartMetric::kWall));
//
// Pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/usage.h"

namespace qfarm::bench {

// One process's share of a method's run.
struct ProcessUsage {
  std::string name;  // "client", "coordinator", "worker-1", "python"
  int64_t pid = 0;
  Usage usage;
};

// One method run on the workload.
struct Row {
  std::string method;  // "local:async", "farm:serial x10", "py:asyncio"
  // Tasks that may run at once, over every executor of the method.
  int64_t slots = 0;
  int64_t tasks = 0;
  // Tasks that finished OK.
  int64_t ok = 0;
  double wall_s = 0;
  // The ideal wall time for `slots` (see workload.h); 0 when the workload
  // has none (echo, latency).
  double ideal_s = 0;
  // Submit to result, per task, in microseconds.
  int64_t latency_p50_us = 0;
  int64_t latency_p99_us = 0;
  // Summed over every process involved: CPU and context switches during the
  // run, the sum of their peak RSS.
  Usage usage;
  // RSS of those processes just before the run.
  int64_t baseline_rss_bytes = 0;
  // The most tasks running at once (from their start and finish times).
  int64_t max_concurrency = 0;
  // Set when the method did not run or did not finish every task.
  std::string note;
  std::vector<ProcessUsage> processes;
  // The run was not made (skipped, failed to start): only `note` counts.
  bool skipped = false;

  // Derived figures; 0 when undefined.
  double ratio() const;  // wall / ideal
  double tasks_per_s() const;
  double cpu_per_task_s() const;
  double voluntary_cs_per_task() const;
  double involuntary_cs_per_task() const;
  // (peak - baseline) / max_concurrency.
  double rss_per_in_flight_bytes() const;
};

struct Report {
  std::string workload;  // "seed"
  std::string title;     // "seed: 10 x sleep 1s"
  // The ideal's formula in words.
  std::string ideal;
  int cores = 0;
  std::vector<Row> rows;
};

// A fixed-width table, one line per row, with a header and a legend.
std::string FormatTable(const Report& report);
// {"workload": ..., "rows": [{...}, ...]} with every field, derived ones
// included, and per-process usage.
std::string FormatJson(const Report& report);
// A header line, then one line per row (RFC 4180 quoting).
std::string FormatCsv(const Report& report);

enum class ChartMetric { kWall, kTasksPerSecond, kLatencyP50 };

// "wall", "tps", "p50"; INVALID_ARGUMENT otherwise.
absl::StatusOr<ChartMetric> ParseChartMetric(absl::string_view text);

// A horizontal bar chart of `metric` per row, in a standalone SVG document.
// For wall time a tick marks each row's ideal.
std::string FormatSvg(const Report& report, ChartMetric metric);

// Human-readable durations and sizes for the table: "850us", "12.3ms",
// "1.002s"; "12.0MiB", "312B".
std::string FormatMicros(double us);
std::string FormatBytes(double bytes);

// Text for XML: & < > " ' escaped.
std::string XmlEscape(absl::string_view text);

// The start of every chart bench draws: the SVG element of `width` x
// `height` on white, "qfarm bench: TITLE" and a grey subtitle (both
// escaped here). The caller appends the rest and "</svg>".
std::string SvgChartHeader(int width, int height, absl::string_view title,
                           absl::string_view subtitle);

}  // namespace qfarm::bench
