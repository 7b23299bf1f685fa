#include "bench/report.h"

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "bench/xml_check.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace qfarm::bench {
namespace {

Report SampleReport() {
  Report report{.workload = "seed",
                .title = "seed: 10 x sleep 1s",
                .ideal = "ceil(tasks / slots) x sleep",
                .cores = 2};
  Row local{.method = "local:async",
            .slots = 10,
            .tasks = 10,
            .ok = 10,
            .wall_s = 1.004,
            .ideal_s = 1.0,
            .latency_p50_us = 1'002'000,
            .latency_p99_us = 1'004'000,
            .usage = {.user_s = 0.002,
                      .sys_s = 0.001,
                      .voluntary_cs = 20,
                      .involuntary_cs = 2,
                      .peak_rss_bytes = 12 << 20,
                      .rss_bytes = 11 << 20},
            .baseline_rss_bytes = 11 << 20,
            .max_concurrency = 10};
  Row farm = local;
  farm.method = "farm:serial x10";
  farm.wall_s = 1.02;
  farm.processes.push_back({.name = "coordinator", .pid = 42});
  Row python = local;
  python.method = "py:process <default>";
  python.slots = 2;
  python.ideal_s = 5;
  python.wall_s = 5.1;
  python.note = "a note, with \"quotes\" & a comma";
  Row skipped{.method = "local:serial",
              .slots = 1,
              .tasks = 10,
              .ideal_s = 10,
              .note = "skipped: the ideal 10 s is over --max-ideal",
              .skipped = true};
  report.rows = {local, farm, python, skipped};
  return report;
}

TEST(RowTest, DerivedFigures) {
  const Row row = SampleReport().rows[0];
  EXPECT_NEAR(row.ratio(), 1.004, 1e-9);
  EXPECT_NEAR(row.tasks_per_s(), 10 / 1.004, 1e-9);
  EXPECT_NEAR(row.cpu_per_task_s(), 0.0003, 1e-12);
  EXPECT_DOUBLE_EQ(row.voluntary_cs_per_task(), 2);
  EXPECT_DOUBLE_EQ(row.involuntary_cs_per_task(), 0.2);
  EXPECT_DOUBLE_EQ(row.rss_per_in_flight_bytes(), (1 << 20) / 10.0);
  Row empty;
  EXPECT_EQ(empty.ratio(), 0);
  EXPECT_EQ(empty.tasks_per_s(), 0);
  EXPECT_EQ(empty.cpu_per_task_s(), 0);
  EXPECT_EQ(empty.rss_per_in_flight_bytes(), 0);
}

TEST(FormatTest, Units) {
  EXPECT_EQ(FormatMicros(850), "850us");
  EXPECT_EQ(FormatMicros(12'345), "12.3ms");
  EXPECT_EQ(FormatMicros(1'002'000), "1.002s");
  EXPECT_EQ(FormatMicros(0.25), "0.25us");
  EXPECT_EQ(FormatBytes(312), "312B");
  EXPECT_EQ(FormatBytes(12 << 20), "12.0MiB");
  EXPECT_EQ(XmlEscape("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&apos;");
}

TEST(FormatTest, TableHasEveryRowAndTheLegend) {
  const std::string table = FormatTable(SampleReport());
  const std::vector<std::string> lines = absl::StrSplit(table, '\n');
  // Title, header, four rows, legend, and the empty string after it.
  ASSERT_EQ(lines.size(), 8u) << table;
  EXPECT_TRUE(absl::StartsWith(lines[0], "seed: 10 x sleep 1s (2 cores)"));
  EXPECT_TRUE(absl::StartsWith(lines[1], "METHOD"));
  EXPECT_TRUE(absl::StartsWith(lines[2], "local:async"));
  EXPECT_TRUE(absl::StrContains(lines[2], "1.004s"));
  EXPECT_TRUE(absl::StrContains(lines[2], "1.004 "));  // wall/ideal
  EXPECT_TRUE(absl::StartsWith(lines[3], "farm:serial x10"));
  EXPECT_TRUE(absl::StrContains(lines[5], "over --max-ideal"));
  EXPECT_TRUE(absl::StartsWith(lines[6], "IDEAL: ceil(tasks / slots)"));
}

// The member `key` of a JSON object.
const google::protobuf::Value& At(const google::protobuf::Value& object,
                                  const std::string& key) {
  return object.struct_value().fields().at(key);
}

TEST(FormatTest, JsonParsesBackWithEveryRow) {
  Report report = SampleReport();
  report.rows[1].note =
      "bad\xFF"
      "byte";
  google::protobuf::Value doc;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(FormatJson(report), &doc)
          .ok());
  EXPECT_EQ(At(doc, "workload").string_value(), "seed");
  EXPECT_EQ(At(doc, "cores").number_value(), 2);
  const auto& rows = At(doc, "rows").list_value().values();
  ASSERT_EQ(rows.size(), 4);
  EXPECT_EQ(At(rows[0], "method").string_value(), "local:async");
  EXPECT_NEAR(At(rows[0], "wall_over_ideal").number_value(), 1.004, 1e-9);
  EXPECT_EQ(At(rows[0], "max_concurrency").number_value(), 10);
  EXPECT_EQ(At(At(rows[0], "usage"), "voluntary_cs").number_value(), 20);
  EXPECT_EQ(At(At(rows[1], "processes").list_value().values(0), "name")
                .string_value(),
            "coordinator");
  EXPECT_EQ(At(rows[1], "note").string_value(),
            "bad\xEF\xBF\xBD"
            "byte");
  EXPECT_EQ(At(rows[2], "method").string_value(), "py:process <default>");
  EXPECT_EQ(At(rows[2], "note").string_value(),
            "a note, with \"quotes\" & a comma");
  EXPECT_TRUE(At(rows[3], "skipped").bool_value());
}

TEST(FormatTest, CsvQuotesAndHasEveryRow) {
  const std::string csv = FormatCsv(SampleReport());
  std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u);
  const size_t columns =
      std::vector<std::string>(absl::StrSplit(lines[0], ',')).size();
  EXPECT_EQ(columns, 25u);
  EXPECT_TRUE(absl::StartsWith(lines[1], "seed,local:async,0,10,10,10,"));
  EXPECT_TRUE(
      absl::StrContains(lines[3], "\"a note, with \"\"quotes\"\" & a comma\""));
}

TEST(FormatTest, SvgIsWellFormedForEveryMetric) {
  for (ChartMetric metric : {ChartMetric::kWall, ChartMetric::kTasksPerSecond,
                             ChartMetric::kLatencyP50}) {
    const std::string svg = FormatSvg(SampleReport(), metric);
    EXPECT_TRUE(CheckWellFormedXml(svg).ok()) << CheckWellFormedXml(svg) << "\n"
                                              << svg;
    EXPECT_TRUE(absl::StrContains(svg, "<svg xmlns="));
    EXPECT_TRUE(absl::StrContains(svg, "py:process &lt;default&gt;"));
    EXPECT_TRUE(absl::StrContains(svg, "farm:serial x10"));
  }
  EXPECT_TRUE(CheckWellFormedXml(FormatSvg(Report{}, ChartMetric::kWall)).ok());
}

TEST(XmlCheckTest, CatchesMalformedDocuments) {
  EXPECT_TRUE(CheckWellFormedXml("<a x=\"1\"><b/>t &amp; &#38;</a>").ok());
  for (const char* bad : {"", "<a>", "<a></b>", "<a x=1/>",
                          "<a x=\"1\" x=\"2\"/>", "<a>&nbsp;</a>", "<a/><b/>",
                          "text<a/>", "<a>1 < 2</a>", "<a x=\"<\"/>"}) {
    EXPECT_FALSE(CheckWellFormedXml(bad).ok()) << bad;
  }
}

TEST(ChartMetricTest, Parses) {
  EXPECT_EQ(*ParseChartMetric("wall"), ChartMetric::kWall);
  EXPECT_EQ(*ParseChartMetric("tps"), ChartMetric::kTasksPerSecond);
  EXPECT_EQ(*ParseChartMetric("p50"), ChartMetric::kLatencyP50);
  EXPECT_FALSE(ParseChartMetric("speed").ok());
}

}  // namespace
}  // namespace qfarm::bench
