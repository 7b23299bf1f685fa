// End to end: the real `qfarm bench` with short sleeps, every method, its
// output formats and its chart. Asserts what ran, never how fast.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
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
