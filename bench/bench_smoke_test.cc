// End to end: the real `qfarm bench` with short sleeps, every method, its
// output formats and its chart. Asserts what ran, never how fast.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/xml_check.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace qfarm::bench {
namespace {

using ::qfarm::testing::BinPath;
using ::qfarm::testing::CommandResult;
using ::qfarm::testing::RunCommand;
using ::qfarm::testing::TempDir;

TEST(BenchSmokeTest, SeedQuickRunsEveryMethod) {
  const CommandResult r =
      RunCommand({BinPath("qfarm"), "bench", "--workload=seed", "--quick",
                  "--output=csv"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(absl::StartsWith(lines[0], "workload,method,skipped,slots,"));
  for (const char* method :
       {"local:serial", "local:thread", "local:async", "local:auto",
        "farm:serial x10", "farm:thread x1", "farm:async x1", "farm:auto x1"}) {
    // Ran (skipped = 0), ten tasks, ten OK.
    const std::string prefix = absl::StrCat("seed,", method, ",0,");
    bool found = false;
    for (const std::string& line : lines) {
      if (!absl::StartsWith(line, prefix)) continue;
      found = true;
      const std::vector<std::string> fields = absl::StrSplit(line, ',');
      ASSERT_GE(fields.size(), 6u);
      EXPECT_EQ(fields[4], "10") << line;  // tasks
      EXPECT_EQ(fields[5], "10") << line;  // ok
    }
    EXPECT_TRUE(found) << method << " missing from:\n" << r.out << r.err;
  }
}

TEST(BenchSmokeTest, PythonRowsJsonAndChart) {
  TempDir dir;
  const std::string chart = dir.path() + "/seed.svg";
  // Flags may stand before the command word too.
  const CommandResult r = RunCommand(
      {BinPath("qfarm"), "--workload=seed", "bench", "--quick", "--python",
       "--methods=local:async", "--output=json", "--chart=" + chart});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  google::protobuf::Struct doc;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &doc).ok())
      << r.out;
  std::vector<std::string> methods;
  for (const google::protobuf::Value& row :
       doc.fields().at("rows").list_value().values()) {
    methods.push_back(row.struct_value().fields().at("method").string_value());
  }
  // The Python rows are there even where Python or uvloop is missing (as
  // skipped rows with a note).
  EXPECT_EQ(methods, (std::vector<std::string>{"local:async", "py:sequential",
                                               "py:process", "py:thread",
                                               "py:asyncio", "py:uvloop"}));
  std::ifstream file(chart);
  std::stringstream svg;
  svg << file.rdbuf();
  EXPECT_TRUE(CheckWellFormedXml(svg.str()).ok())
      << CheckWellFormedXml(svg.str());
  EXPECT_TRUE(absl::StrContains(svg.str(), "py:asyncio"));
}

// A tiny soak: one row per job, the ratios, the restart after kill -9
// measured, and a chart of the two lines.
TEST(BenchSmokeTest, SoakRowPerJobAndRestart) {
  TempDir dir;
  const std::string chart = dir.path() + "/soak.svg";
  const CommandResult r =
      RunCommand({BinPath("qfarm"), "bench", "--workload=soak", "--jobs=3",
                  "--tasks=100", "--retain-finished=0s", "--chart=" + chart});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  int rows = 0;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t job = 0;
    if (fields.size() < 6 || !absl::SimpleAtoi(fields[0], &job)) continue;
    ++rows;
    EXPECT_EQ(job, rows) << line;
    int64_t tasks = 0;
    EXPECT_TRUE(absl::SimpleAtoi(fields[1], &tasks)) << line;
    EXPECT_EQ(tasks, 100 * rows) << line;  // tasks so far
  }
  EXPECT_EQ(rows, 3) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "RSS job 3 / job 3: 1.000")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "restart after kill -9: ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, " s to listening")) << r.out;
  std::ifstream file(chart);
  std::stringstream svg;
  svg << file.rdbuf();
  EXPECT_TRUE(CheckWellFormedXml(svg.str()).ok())
      << CheckWellFormedXml(svg.str());
  EXPECT_TRUE(absl::StrContains(svg.str(), "<polyline")) << svg.str();

  const CommandResult csv =
      RunCommand({BinPath("qfarm"), "bench", "--workload=soak", "--jobs=2",
                  "--tasks=50", "--retain-finished=0s", "--output=csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.out << csv.err;
  const std::vector<std::string> lines =
      absl::StrSplit(csv.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << csv.out;
  EXPECT_TRUE(absl::StartsWith(lines[2], "2,100,50,")) << lines[2];
  EXPECT_TRUE(absl::StrContains(csv.err, "restart after kill -9: ")) << csv.err;
}

TEST(BenchSmokeTest, SoakUsageErrors) {
  CommandResult bad =
      RunCommand({BinPath("qfarm"), "bench", "--workload=echo", "--jobs=3"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(bad.err, "--jobs is for --workload=soak"))
      << bad.err;
  bad = RunCommand(
      {BinPath("qfarm"), "bench", "--workload=soak", "--retain-finished=-1s"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  bad = RunCommand({BinPath("qfarm"), "bench", "--workload=soak",
                    "--coordinator=127.0.0.1:1"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_TRUE(absl::StrContains(bad.err, "--coordinator")) << bad.err;
}

TEST(BenchSmokeTest, HelpAndUsageErrors) {
  CommandResult help = RunCommand({BinPath("qfarm"), "help", "bench"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_TRUE(absl::StrContains(help.out, "usage: qfarm bench")) << help.out;
  help = RunCommand({BinPath("qfarm"), "bench", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_TRUE(absl::StrContains(help.out, "--methods")) << help.out;
  const CommandResult bad =
      RunCommand({BinPath("qfarm"), "bench", "--workload=nope"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(bad.err, "--workload=nope")) << bad.err;
  const CommandResult bad_method =
      RunCommand({BinPath("qfarm"), "bench", "--methods=local:fast"});
  EXPECT_EQ(bad_method.exit_code, 2);
}

}  // namespace
}  // namespace qfarm::bench
