#include "bench/soak.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/xml_check.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace qfarm::bench {
namespace {

SoakSample Job(int64_t job, int64_t rss, int64_t journal) {
  return {.job = job,
          .tasks_so_far = job * 100,
          .ok = 100,
          .rss_bytes = rss,
          .journal_bytes = journal,
          .fds = 20,
          .job_s = 0.5};
}

std::vector<SoakSample> Jobs(int64_t n) {
  std::vector<SoakSample> jobs;
  for (int64_t i = 1; i <= n; ++i) jobs.push_back(Job(i, i * 1000, i * 10));
  return jobs;
}

TEST(SoakTest, ReferenceJobIsTenOrTheLast) {
  EXPECT_EQ(SoakReferenceJob(0), 0);
  EXPECT_EQ(SoakReferenceJob(3), 3);
  EXPECT_EQ(SoakReferenceJob(10), 10);
  EXPECT_EQ(SoakReferenceJob(200), 10);
}

TEST(SoakTest, RatiosAreLastOverJobTen) {
  const SoakRatios r = ComputeSoakRatios(Jobs(200));
  EXPECT_EQ(r.reference_job, 10);
  EXPECT_EQ(r.last_job, 200);
  EXPECT_DOUBLE_EQ(r.rss, 200'000.0 / 10'000.0);
  EXPECT_DOUBLE_EQ(r.journal, 2'000.0 / 100.0);
}

TEST(SoakTest, RatiosOfFewJobsAndOfNothing) {
  SoakRatios r = ComputeSoakRatios(Jobs(3));
  EXPECT_EQ(r.reference_job, 3);
  EXPECT_DOUBLE_EQ(r.rss, 1.0);
  r = ComputeSoakRatios({});
  EXPECT_EQ(r.reference_job, 0);
  EXPECT_EQ(r.rss, 0);
  // A reference of 0 bytes gives 0, not infinity.
  std::vector<SoakSample> jobs = Jobs(12);
  jobs[9].journal_bytes = 0;
  EXPECT_EQ(ComputeSoakRatios(jobs).journal, 0);
}

TEST(SoakTest, JournalBytesAddsTheDatabaseAndItsWal) {
  testing::TempDir dir;
  EXPECT_EQ(JournalBytes(dir.path()), 0);
  std::ofstream(dir.path() + "/journal.db") << std::string(4096, 'd');
  EXPECT_EQ(JournalBytes(dir.path()), 4096);
  std::ofstream(dir.path() + "/journal.db-wal") << std::string(100, 'w');
  // Other files (the shm index) do not count.
  std::ofstream(dir.path() + "/journal.db-shm") << std::string(7, 's');
  EXPECT_EQ(JournalBytes(dir.path()), 4196);
}

TEST(SoakTest, CountOpenFdsSeesAnOpenedFile) {
  absl::StatusOr<int64_t> before = CountOpenFds(getpid());
  ASSERT_TRUE(before.ok()) << before.status();
  std::ifstream opened("/proc/self/status");
  absl::StatusOr<int64_t> after = CountOpenFds(getpid());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, *before + 1);
  EXPECT_EQ(CountOpenFds(-5).status().code(), absl::StatusCode::kNotFound);
}

SoakReport Report(int64_t jobs) {
  SoakReport report{.title = "soak: 12 jobs x 100 echo tasks",
                    .cores = 2,
                    .tasks_per_job = 100,
                    .workers = 2,
                    .before = Job(0, 500, 5),
                    .jobs = Jobs(jobs),
                    .restart_s = 0.25,
                    .restarted = Job(jobs, 800, 8)};
  return report;
}

TEST(SoakTest, TableHasARowPerJobTheRatiosAndTheRestart) {
  SoakReport report = Report(12);
  report.jobs[4].ok = 97;
  const std::string table = FormatSoakTable(report);
  const std::vector<std::string> lines = absl::StrSplit(table, '\n');
  int rows = 0;
  for (const std::string& line : lines) {
    const std::vector<std::string> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t job = 0;
    if (!fields.empty() && absl::SimpleAtoi(fields[0], &job)) ++rows;
  }
  EXPECT_EQ(rows, 12) << table;
  EXPECT_TRUE(absl::StrContains(table, "3 tasks not OK")) << table;
  // 12,000 / 10,000 and 120 / 100.
  EXPECT_TRUE(absl::StrContains(table, "RSS job 12 / job 10: 1.200")) << table;
  EXPECT_TRUE(absl::StrContains(table, "journal job 12 / job 10: 1.200"))
      << table;
  EXPECT_TRUE(
      absl::StrContains(table, "restart after kill -9: 0.250 s to listening"))
      << table;
  EXPECT_FALSE(report.ok());
  report.jobs[4].ok = 100;
  EXPECT_TRUE(report.ok());
  report.restart_s = -1;
  EXPECT_FALSE(report.ok());
  EXPECT_TRUE(absl::StrContains(FormatSoakTable(report),
                                "restart after kill -9: not measured"));
}

TEST(SoakTest, CsvAndJsonCarryExactFigures) {
  const SoakReport report = Report(3);
  const std::string csv = FormatSoakCsv(report);
  const std::vector<std::string> lines =
      absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << csv;
  EXPECT_EQ(lines[0], "job,tasks_so_far,ok,rss_bytes,journal_bytes,fds,job_s");
  EXPECT_EQ(lines[3], "3,300,100,3000,30,20,0.5");
  const std::string json = FormatSoakJson(report);
  EXPECT_TRUE(absl::StrContains(json, "\"restart_s\":0.25")) << json;
  EXPECT_TRUE(absl::StrContains(
      json, "\"ratios\":{\"reference_job\":3,\"last_job\":3,\"rss\":1,"))
      << json;
}

TEST(SoakTest, SvgIsWellFormedWithALinePerSeries) {
  SoakReport report = Report(12);
  report.title = "soak <&> jobs";
  const std::string svg = FormatSoakSvg(report);
  EXPECT_TRUE(CheckWellFormedXml(svg).ok()) << CheckWellFormedXml(svg);
  size_t polylines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    ++polylines;
  }
  EXPECT_EQ(polylines, 2u);
  EXPECT_TRUE(absl::StrContains(svg, "0.250 s to listening"));
  // No jobs: still a document.
  EXPECT_TRUE(CheckWellFormedXml(FormatSoakSvg(Report(0))).ok());
}

}  // namespace
}  // namespace qfarm::bench
