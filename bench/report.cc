#include "bench/report.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/abbreviate.h"
#include "common/json.h"

namespace qfarm::bench {
namespace {

double PerTask(double value, int64_t tasks) {
  return tasks > 0 ? value / static_cast<double>(tasks) : 0;
}

// 0.8, 12.5, 4.6k, 1.23M.
std::string FormatCount(double n) {
  if (n >= 1e6) return absl::StrFormat("%.2fM", n / 1e6);
  if (n >= 1e4) return absl::StrFormat("%.0fk", n / 1e3);
  if (n >= 1e3) return absl::StrFormat("%.1fk", n / 1e3);
  if (n >= 10) return absl::StrFormat("%.0f", n);
  return absl::StrFormat("%.2g", n);
}

std::string FormatSeconds(double s) {
  if (s <= 0) return "-";
  return absl::StrFormat("%.3fs", s);
}

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  return absl::StrFormat("%.9g", value);
}

std::string CsvField(absl::string_view text) {
  if (text.find_first_of(",\"\n\r") == absl::string_view::npos) {
    return std::string(text);
  }
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string UsageJson(const Usage& u) {
  return absl::StrCat("{\"user_s\":", JsonNumber(u.user_s),
                      ",\"sys_s\":", JsonNumber(u.sys_s),
                      ",\"cpu_s\":", JsonNumber(u.cpu_s()),
                      ",\"voluntary_cs\":", u.voluntary_cs,
                      ",\"involuntary_cs\":", u.involuntary_cs,
                      ",\"peak_rss_bytes\":", u.peak_rss_bytes,
                      ",\"rss_bytes\":", u.rss_bytes, "}");
}

// Which family a method belongs to, by its prefix, for the chart's colours.
absl::string_view Family(absl::string_view method) {
  if (absl::StartsWith(method, "local:")) return "local";
  if (absl::StartsWith(method, "farm")) return "farm";
  if (absl::StartsWith(method, "py:")) return "python";
  return "other";
}

absl::string_view FamilyColour(absl::string_view family) {
  if (family == "local") return "#4c78a8";
  if (family == "farm") return "#f58518";
  if (family == "python") return "#8c8c8c";
  return "#54a24b";
}

double MetricValue(const Row& row, ChartMetric metric) {
  switch (metric) {
    case ChartMetric::kWall:
      return row.wall_s;
    case ChartMetric::kTasksPerSecond:
      return row.tasks_per_s();
    case ChartMetric::kLatencyP50:
      return static_cast<double>(row.latency_p50_us) / 1e3;
  }
  return 0;
}

std::string MetricText(const Row& row, ChartMetric metric) {
  switch (metric) {
    case ChartMetric::kWall:
      return row.ideal_s > 0 ? absl::StrFormat("%.3f s (%.2fx ideal)",
                                               row.wall_s, row.ratio())
                             : absl::StrFormat("%.3f s", row.wall_s);
    case ChartMetric::kTasksPerSecond:
      return absl::StrCat(FormatCount(row.tasks_per_s()), " tasks/s");
    case ChartMetric::kLatencyP50:
      return absl::StrCat(
          "p50 ", FormatMicros(static_cast<double>(row.latency_p50_us)),
          ", p99 ", FormatMicros(static_cast<double>(row.latency_p99_us)));
  }
  return "";
}

}  // namespace

double Row::ratio() const { return ideal_s > 0 ? wall_s / ideal_s : 0; }

double Row::tasks_per_s() const {
  return wall_s > 0 ? static_cast<double>(ok) / wall_s : 0;
}

double Row::cpu_per_task_s() const { return PerTask(usage.cpu_s(), tasks); }

double Row::voluntary_cs_per_task() const {
  return PerTask(static_cast<double>(usage.voluntary_cs), tasks);
}

double Row::involuntary_cs_per_task() const {
  return PerTask(static_cast<double>(usage.involuntary_cs), tasks);
}

double Row::rss_per_in_flight_bytes() const {
  if (max_concurrency <= 0) return 0;
  return std::max<double>(0, static_cast<double>(usage.peak_rss_bytes -
                                                 baseline_rss_bytes)) /
         static_cast<double>(max_concurrency);
}

std::string FormatMicros(double us) {
  if (us <= 0) return "0";
  if (us < 1) return absl::StrFormat("%.2fus", us);
  if (us < 1e3) return absl::StrFormat("%.0fus", us);
  if (us < 1e5) return absl::StrFormat("%.1fms", us / 1e3);
  if (us < 1e6) return absl::StrFormat("%.0fms", us / 1e3);
  return absl::StrFormat("%.3fs", us / 1e6);
}

std::string FormatBytes(double bytes) {
  if (bytes < 1024) return absl::StrFormat("%.0fB", bytes);
  if (bytes < 1024 * 1024) return absl::StrFormat("%.1fKiB", bytes / 1024);
  if (bytes < 1024.0 * 1024 * 1024) {
    return absl::StrFormat("%.1fMiB", bytes / (1024 * 1024));
  }
  return absl::StrFormat("%.2fGiB", bytes / (1024.0 * 1024 * 1024));
}

std::string SvgChartHeader(int width, int height, absl::string_view title,
                           absl::string_view subtitle) {
  return absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"13\">\n"
      "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n"
      "<text x=\"12\" y=\"26\" font-size=\"17\" font-weight=\"bold\">"
      "qfarm bench: %s</text>\n"
      "<text x=\"12\" y=\"48\" fill=\"#444444\">%s</text>\n",
      width, height, width, height, width, height, XmlEscape(title),
      XmlEscape(subtitle));
}

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

absl::StatusOr<ChartMetric> ParseChartMetric(absl::string_view text) {
  if (text == "wall") return ChartMetric::kWall;
  if (text == "tps") return ChartMetric::kTasksPerSecond;
  if (text == "p50") return ChartMetric::kLatencyP50;
  return absl::InvalidArgumentError(absl::StrCat(
      "chart metric \"", Abbreviate(text), "\" is not one of wall, tps, p50"));
}

std::string FormatTable(const Report& report) {
  constexpr char kLine[] =
      "%-18s %7s %9s %9s %7s %9s %8s %8s %9s %8s %8s %9s %9s %8s  %s\n";
  std::string out = absl::StrCat(report.title, " (", report.cores, " cores)\n");
  absl::StrAppendFormat(&out, kLine, "METHOD", "SLOTS", "WALL", "IDEAL",
                        "W/IDEAL", "TASKS/S", "P50", "P99", "CPU/TASK",
                        "VCS/TASK", "ICS/TASK", "PEAK-RSS", "RSS/TASK",
                        "MAX-CONC", "NOTE");
  for (const Row& row : report.rows) {
    if (row.skipped) {
      absl::StrAppendFormat(&out, kLine, row.method,
                            row.slots > 0 ? absl::StrCat(row.slots) : "-", "-",
                            FormatSeconds(row.ideal_s), "-", "-", "-", "-", "-",
                            "-", "-", "-", "-", "-", row.note);
      continue;
    }
    absl::StrAppendFormat(
        &out, kLine, row.method, absl::StrCat(row.slots),
        FormatSeconds(row.wall_s), FormatSeconds(row.ideal_s),
        row.ideal_s > 0 ? absl::StrFormat("%.3f", row.ratio()) : "-",
        FormatCount(row.tasks_per_s()),
        FormatMicros(static_cast<double>(row.latency_p50_us)),
        FormatMicros(static_cast<double>(row.latency_p99_us)),
        FormatMicros(row.cpu_per_task_s() * 1e6),
        absl::StrFormat("%.3g", row.voluntary_cs_per_task()),
        absl::StrFormat("%.3g", row.involuntary_cs_per_task()),
        FormatBytes(static_cast<double>(row.usage.peak_rss_bytes)),
        row.max_concurrency > 0 ? FormatBytes(row.rss_per_in_flight_bytes())
                                : "-",
        absl::StrCat(row.max_concurrency), row.note);
  }
  absl::StrAppend(
      &out, "IDEAL: ", report.ideal,
      ". P50/P99: submit to result. CPU/TASK, VCS/TASK (voluntary) and "
      "ICS/TASK (involuntary context switches): every process involved, "
      "during the run, per task. PEAK-RSS: their peak resident memory, "
      "summed. RSS/TASK: (PEAK-RSS - RSS before the run) / MAX-CONC.\n");
  return out;
}

std::string FormatJson(const Report& report) {
  std::string out = absl::StrCat("{\"workload\":", JsonString(report.workload),
                                 ",\"title\":", JsonString(report.title),
                                 ",\"ideal\":", JsonString(report.ideal),
                                 ",\"cores\":", report.cores, ",\"rows\":[");
  for (size_t i = 0; i < report.rows.size(); ++i) {
    const Row& row = report.rows[i];
    absl::StrAppend(
        &out, i > 0 ? ",\n" : "\n", "{\"method\":", JsonString(row.method),
        ",\"skipped\":", row.skipped ? "true" : "false",
        ",\"slots\":", row.slots, ",\"tasks\":", row.tasks, ",\"ok\":", row.ok,
        ",\"wall_s\":", JsonNumber(row.wall_s),
        ",\"ideal_s\":", JsonNumber(row.ideal_s),
        ",\"wall_over_ideal\":", JsonNumber(row.ratio()),
        ",\"tasks_per_s\":", JsonNumber(row.tasks_per_s()),
        ",\"latency_p50_us\":", row.latency_p50_us,
        ",\"latency_p99_us\":", row.latency_p99_us,
        ",\"cpu_per_task_us\":", JsonNumber(row.cpu_per_task_s() * 1e6),
        ",\"voluntary_cs_per_task\":", JsonNumber(row.voluntary_cs_per_task()),
        ",\"involuntary_cs_per_task\":",
        JsonNumber(row.involuntary_cs_per_task()),
        ",\"baseline_rss_bytes\":", row.baseline_rss_bytes,
        ",\"rss_per_in_flight_bytes\":",
        JsonNumber(row.rss_per_in_flight_bytes()),
        ",\"max_concurrency\":", row.max_concurrency,
        ",\"usage\":", UsageJson(row.usage), ",\"processes\":[");
    for (size_t p = 0; p < row.processes.size(); ++p) {
      const ProcessUsage& process = row.processes[p];
      absl::StrAppend(&out, p > 0 ? "," : "",
                      "{\"name\":", JsonString(process.name),
                      ",\"pid\":", process.pid,
                      ",\"usage\":", UsageJson(process.usage), "}");
    }
    absl::StrAppend(&out, "],\"note\":", JsonString(row.note), "}");
  }
  absl::StrAppend(&out, "\n]}\n");
  return out;
}

std::string FormatCsv(const Report& report) {
  std::string out =
      "workload,method,skipped,slots,tasks,ok,wall_s,ideal_s,wall_over_ideal,"
      "tasks_per_s,latency_p50_us,latency_p99_us,cpu_s,user_s,sys_s,"
      "cpu_per_task_us,voluntary_cs,involuntary_cs,voluntary_cs_per_task,"
      "involuntary_cs_per_task,peak_rss_bytes,baseline_rss_bytes,"
      "rss_per_in_flight_bytes,max_concurrency,note\n";
  for (const Row& row : report.rows) {
    std::vector<std::string> fields = {
        CsvField(report.workload),
        CsvField(row.method),
        row.skipped ? "1" : "0",
        absl::StrCat(row.slots),
        absl::StrCat(row.tasks),
        absl::StrCat(row.ok),
        JsonNumber(row.wall_s),
        JsonNumber(row.ideal_s),
        JsonNumber(row.ratio()),
        JsonNumber(row.tasks_per_s()),
        absl::StrCat(row.latency_p50_us),
        absl::StrCat(row.latency_p99_us),
        JsonNumber(row.usage.cpu_s()),
        JsonNumber(row.usage.user_s),
        JsonNumber(row.usage.sys_s),
        JsonNumber(row.cpu_per_task_s() * 1e6),
        absl::StrCat(row.usage.voluntary_cs),
        absl::StrCat(row.usage.involuntary_cs),
        JsonNumber(row.voluntary_cs_per_task()),
        JsonNumber(row.involuntary_cs_per_task()),
        absl::StrCat(row.usage.peak_rss_bytes),
        absl::StrCat(row.baseline_rss_bytes),
        JsonNumber(row.rss_per_in_flight_bytes()),
        absl::StrCat(row.max_concurrency),
        CsvField(row.note)};
    absl::StrAppend(&out, absl::StrJoin(fields, ","), "\n");
  }
  return out;
}

std::string FormatSvg(const Report& report, ChartMetric metric) {
  constexpr int kWidth = 960;
  constexpr int kLabelWidth = 190;
  constexpr int kBarMax = 520;
  constexpr int kRowHeight = 26;
  constexpr int kTop = 78;
  const int height =
      kTop + kRowHeight * static_cast<int>(report.rows.size()) + 40;

  double scale_max = 0;
  for (const Row& row : report.rows) {
    if (row.skipped) continue;
    scale_max = std::max(scale_max, MetricValue(row, metric));
    if (metric == ChartMetric::kWall)
      scale_max = std::max(scale_max, row.ideal_s);
  }
  if (scale_max <= 0) scale_max = 1;

  absl::string_view what;
  switch (metric) {
    case ChartMetric::kWall:
      what = "wall time, seconds (shorter is better; | marks the ideal)";
      break;
    case ChartMetric::kTasksPerSecond:
      what = "tasks per second (longer is better)";
      break;
    case ChartMetric::kLatencyP50:
      what = "task latency p50, milliseconds (shorter is better)";
      break;
  }

  std::string out =
      SvgChartHeader(kWidth, height, report.title,
                     absl::StrCat(what, ", ", report.cores, " cores"));
  // Legend.
  int legend_x = kLabelWidth;
  for (absl::string_view family : {"local", "farm", "python"}) {
    absl::StrAppendFormat(
        &out,
        "<rect x=\"%d\" y=\"58\" width=\"12\" height=\"12\" fill=\"%s\"/>"
        "<text x=\"%d\" y=\"69\">%s</text>\n",
        legend_x, FamilyColour(family), legend_x + 16, family);
    legend_x += 90;
  }
  for (size_t i = 0; i < report.rows.size(); ++i) {
    const Row& row = report.rows[i];
    const int y = kTop + kRowHeight * static_cast<int>(i);
    absl::StrAppendFormat(&out,
                          "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s"
                          "</text>\n",
                          kLabelWidth - 8, y + 17, XmlEscape(row.method));
    if (row.skipped) {
      absl::StrAppendFormat(&out,
                            "<text x=\"%d\" y=\"%d\" fill=\"#888888\">%s"
                            "</text>\n",
                            kLabelWidth, y + 17,
                            XmlEscape(absl::StrCat("not run: ", row.note)));
      continue;
    }
    const double value = MetricValue(row, metric);
    const int bar =
        std::max(1, static_cast<int>(std::lround(value / scale_max * kBarMax)));
    absl::StrAppendFormat(
        &out,
        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"18\" fill=\"%s\">"
        "<title>%s</title></rect>\n"
        "<text x=\"%d\" y=\"%d\">%s</text>\n",
        kLabelWidth, y + 4, bar, FamilyColour(Family(row.method)),
        XmlEscape(absl::StrCat(row.method, ": ", MetricText(row, metric))),
        kLabelWidth + bar + 6, y + 17, XmlEscape(MetricText(row, metric)));
    if (metric == ChartMetric::kWall && row.ideal_s > 0) {
      const int x =
          kLabelWidth +
          static_cast<int>(std::lround(row.ideal_s / scale_max * kBarMax));
      absl::StrAppendFormat(&out,
                            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                            "stroke=\"#000000\" stroke-width=\"2\"/>\n",
                            x, y + 1, x, y + 25);
    }
  }
  absl::StrAppendFormat(&out,
                        "<text x=\"12\" y=\"%d\" fill=\"#444444\" "
                        "font-size=\"11\">ideal: %s</text>\n",
                        height - 14, XmlEscape(report.ideal));
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

}  // namespace qfarm::bench
