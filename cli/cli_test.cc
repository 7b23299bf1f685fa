// The CLI without a network: usage errors, help, and --local runs.
#include "cli/cli.h"

#include <sstream>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

CliRun Cli(const std::vector<std::string>& args, const std::string& in = "",
           bool err_is_terminal = false) {
  std::istringstream input(in);
  std::ostringstream out, err;
  // Nothing listens on port 1: a command that reaches the network fails.
  int code = RunCli(args, "127.0.0.1:1",
                    {.in = &input,
                     .out = &out,
                     .err = &err,
                     .err_is_terminal = err_is_terminal});
  return {code, out.str(), err.str()};
}

TEST(CliTest, HelpExitsZero) {
  CliRun r = Cli({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("Commands:"));
  EXPECT_THAT(r.out, HasSubstr("--coordinator"));
  CliRun map = Cli({"map", "--help"});
  EXPECT_EQ(map.code, 0);
  EXPECT_THAT(map.out, HasSubstr("usage: qfarm map"));
  EXPECT_EQ(Cli({"help", "cancel"}).code, 0);
}

TEST(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Cli({}).code, 2);
  CliRun unknown = Cli({"frobnicate"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command \"frobnicate\""));
  CliRun bad_spec = Cli({"map", "sleep:1"});
  EXPECT_EQ(bad_spec.code, 2);
  EXPECT_THAT(bad_spec.err, HasSubstr("needs a unit"));
  EXPECT_EQ(Cli({"map"}).code, 2);
  EXPECT_EQ(Cli({"map", "--output=xml", "echo:a"}).code, 2);
  EXPECT_EQ(Cli({"map", "--bogus", "echo:a"}).code, 2);
  EXPECT_EQ(Cli({"watch", "abc"}).code, 2);
  EXPECT_EQ(Cli({"watch"}).code, 2);
  EXPECT_EQ(Cli({"workers", "--repeat=2"}).code, 2);
  EXPECT_EQ(Cli({"submit", "--local", "echo:a"}).code, 2);
  EXPECT_EQ(Cli({"map", "--local", "--mode=fast", "echo:a"}).code, 2);
  CliRun missing = Cli({"map", "--from=/nonexistent/specs"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("cannot open"));
}

TEST(CliTest, BadJobsFlagsAreUsageErrors) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"jobs", "--limit=0"},
           {"jobs", "--limit=-1"},
           {"jobs", "--limit=x"},
           {"jobs", "--state=finished"},
           {"jobs", "7"},
           {"status", "--state=bogus"},
           {"map", "--state=done", "echo:a"},
           {"status", "3", "--limit=4"},
           {"workers", "--progress=never"},
           {"map", "--local", "--progress=sometimes", "echo:a"}}) {
    CliRun r = Cli(args);
    EXPECT_EQ(r.code, 2) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("qfarm: ")) << absl::StrJoin(args, " ");
  }
  EXPECT_THAT(Cli({"jobs", "--state=finished"}).err,
              HasSubstr("expected running, done, failed or cancelled"));
  // Well-formed, they reach for the coordinator.
  EXPECT_EQ(Cli({"jobs", "--state=done", "--limit=5"}).code, 1);
  EXPECT_EQ(Cli({"status"}).code, 1);
}

TEST(CliTest, ProgressLineOnlyOnATerminalOrWhenAsked) {
  const std::vector<std::string> map = {"map", "--local", "--mode=async",
                                        "--repeat=3", "sleep:1s"};
  auto with = [&map](std::vector<std::string> extra) {
    extra.insert(extra.begin(), map.begin(), map.end());
    return extra;
  };
  // A file or pipe: no progress bytes.
  for (const CliRun& r :
       {Cli(map), Cli(with({"--progress=never"}), "", true)}) {
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.err, Not(HasSubstr("\r")));
    EXPECT_THAT(r.err, Not(HasSubstr("\x1b[")));
    EXPECT_THAT(r.err, Not(HasSubstr("[local]")));
  }
  // A terminal, or --progress=always: drawn, then erased before the
  // summary.
  for (const CliRun& r :
       {Cli(map, "", true), Cli(with({"--progress=always"}))}) {
    ASSERT_EQ(r.code, 0) << r.err;
    // (The line's form is ProgressTest's; the task lasts 10 redraws.)
    EXPECT_THAT(r.err, HasSubstr("\r[local] "));
    EXPECT_THAT(r.err, HasSubstr("/3  ok "));
    // The local pool does not say how many run.
    EXPECT_THAT(r.err, Not(HasSubstr("running")));
    const size_t erased = r.err.rfind("\r\x1b[K");
    ASSERT_NE(erased, std::string::npos) << r.err;
    EXPECT_EQ(r.err.substr(erased + 4)
                  .find("local async, 10000 slots: 3 tasks: "
                        "3 ok"),
              0u)
        << r.err;
  }
}

TEST(CliTest, SummarySaysWhatItMeasured) {
  CliRun r = Cli({"map", "--local", "echo:a", "echo:b"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("local thread, 4 slots: 2 tasks: 2 ok, 0 "
                               "failed, 0 timed out, 0 cancelled in "));
  EXPECT_THAT(r.err, HasSubstr(" s (start to last result)\n"));
}

TEST(CliTest, UnreachableCoordinatorExitsOne) {
  CliRun r = Cli({"status", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
}

TEST(CliTest, LocalMapPrintsInInputOrder) {
  for (const char* mode : {"serial", "thread", "async"}) {
    CliRun r = Cli({"map", "--local", std::string("--mode=") + mode, "echo:a",
                    "sleep:20ms", "echo:c", "cpu:0"});
    ASSERT_EQ(r.code, 0) << mode << r.err;
    std::vector<std::string> lines =
        absl::StrSplit(r.out, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 4u) << r.out;
    EXPECT_THAT(lines[0], HasSubstr("ok"));
    EXPECT_THAT(lines[0], ::testing::EndsWith("a"));
    EXPECT_THAT(lines[1], ::testing::EndsWith("20"));
    EXPECT_THAT(lines[2], ::testing::EndsWith("c"));
    EXPECT_THAT(lines[0], HasSubstr("local/"));
    EXPECT_THAT(r.err, HasSubstr("4 tasks: 4 ok"));
  }
}

TEST(CliTest, SpecsFromStdinRepeatedAndFlagsAnywhere) {
  CliRun r = Cli({"--output=json", "map", "--from=-", "--local", "--repeat=3"},
                 "# comment\necho:x\n\n  echo:y  \n");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_THAT(lines[0], HasSubstr("\"index\":0"));
  EXPECT_THAT(lines[0], HasSubstr("\"value\":\"x\""));
  EXPECT_THAT(lines[5], HasSubstr("\"index\":5"));
  EXPECT_THAT(lines[5], HasSubstr("\"value\":\"y\""));
}

TEST(CliTest, FlagsOfOneRunDoNotLeakIntoTheNext) {
  CliRun json = Cli({"map", "--local", "--output=json", "echo:a"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"value\":\"a\""));
  CliRun text = Cli({"map", "--local", "echo:a"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_THAT(text.out, Not(HasSubstr("\"value\"")));
  // --local did not stay set either: without it, map needs the farm.
  EXPECT_EQ(Cli({"map", "echo:a"}).code, 1);
}

TEST(CliTest, FlagNamesTakeDashesOnly) {
  CliRun r = Cli({"map", "--local", "--token_file=x", "echo:a"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown flag --token_file"));
}

TEST(CliTest, FailedTaskExitsOne) {
  CliRun r = Cli({"map", "--local", "sleep:10s@timeout=20ms", "echo:ok"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("timed_out"));
  EXPECT_THAT(r.err, HasSubstr("1 timed out"));
}

}  // namespace
}  // namespace qfarm::client
