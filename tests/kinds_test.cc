// Kinds of the user's own on a farm of real binaries: a worker built with the
// SDK (qfarm-example-worker), the Python worker (worker/python/), and the
// built-in qfarm-worker side by side; routing by kind, jobs waiting for a
// kind, --kinds, and handlers that throw, crash or answer too much.
#include <signal.h>

#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"

namespace qfarm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPython[] = "/usr/bin/python3";

WorkerSpec Example(std::string id, int slots = 2) {
  return {.id = std::move(id),
          .mode = "thread",
          .slots = slots,
          .extra_flags = {},
          .command = {BinPath("qfarm-example-worker")}};
}

WorkerSpec Python(std::string id, int slots = 3) {
  return {.id = std::move(id),
          .mode = "thread",
          .slots = slots,
          .extra_flags = {},
          .command = {kPython, std::string(QFARM_SOURCE_DIR) +
                                   "/worker/python/seed_worker.py"}};
}

std::string Diagnose(const CommandResult& r, const LocalFarm& farm) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout:\n", r.out, "\nstderr:\n",
                      r.err, "\n", farm.Logs());
}

TEST(KindsTest, MixedJobRunsEachTaskOnAWorkerThatOffersItsKind) {
  auto farm = LocalFarm::Start({{.id = "builtin", .mode = "thread", .slots = 3},
                                Example("example"),
                                Python("py-1")});
  ASSERT_TRUE(farm.ok()) << farm.status();
  const std::vector<std::string> specs = {"reverse:hello", "action:1",
                                          "sleep:100ms",   "reverse:abc",
                                          "action:0",      "sleep:50ms"};
  std::vector<std::string> args = {"map"};
  args.insert(args.end(), specs.begin(), specs.end());
  CommandResult text = (*farm)->Qfarm(args);
  EXPECT_EQ(text.exit_code, 0) << Diagnose(text, **farm);
  std::cout << "qfarm map " << absl::StrJoin(specs, " ") << "\n" << text.out;
  args.push_back("--output=json");
  CommandResult json = (*farm)->Qfarm(args);
  ASSERT_EQ(json.exit_code, 0) << Diagnose(json, **farm);
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(json.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), specs.size());
  const std::vector<std::string> values = {"olleh", "101", "100",
                                           "cba",   "100", "50"};
  for (size_t i = 0; i < specs.size(); ++i) {
    const JsonObject& line = (*lines)[i];
    EXPECT_EQ(line.at("index"), absl::StrCat(i));  // Input order.
    EXPECT_EQ(line.at("status"), "ok") << specs[i];
    EXPECT_EQ(line.at("value"), values[i]) << specs[i];
    const std::string& worker = line.at("worker");
    if (absl::StartsWith(specs[i], "reverse")) {
      EXPECT_EQ(worker, "example") << specs[i];
    } else if (absl::StartsWith(specs[i], "action")) {
      EXPECT_EQ(worker, "py-1") << specs[i];
      EXPECT_THAT(line.at("executor"), StartsWith("ThreadPoolExecutor-"));
    } else {  // sleep: the built-in worker or the example, which offers it.
      EXPECT_THAT(worker, ::testing::AnyOf("builtin", "example")) << specs[i];
    }
  }
  CommandResult workers = (*farm)->Qfarm({"workers"});
  EXPECT_EQ(workers.exit_code, 0) << Diagnose(workers, **farm);
  EXPECT_THAT(workers.out, HasSubstr("cpu,echo,http,reverse,sleep,wordcount"));
  EXPECT_THAT(workers.out, HasSubstr("action"));
  EXPECT_TRUE((*farm)->Stop().ok()) << (*farm)->Logs();
}

// The seed's pool example, submit(action, 3) then map(action, [1, 3, 5]) on
// 3 threads, through the Python worker.
TEST(KindsTest, SeedPoolExampleThroughThePythonWorker) {
  auto farm = LocalFarm::Start({Python("py-1", 3)});
  ASSERT_TRUE(farm.ok()) << farm.status();
  CommandResult single = (*farm)->Qfarm({"map", "action:3"});
  ASSERT_EQ(single.exit_code, 0) << Diagnose(single, **farm);
  EXPECT_THAT(single.out, HasSubstr("py-1/ThreadPoolExecutor-0_0"));
  EXPECT_THAT(single.out, HasSubstr("103"));
  CommandResult several = (*farm)->Qfarm(
      {"map", "action:1", "action:3", "action:5", "--output=json"});
  ASSERT_EQ(several.exit_code, 0) << Diagnose(several, **farm);
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(several.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 3u);
  std::set<std::string> executors;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*lines)[i].at("value"),
              std::vector<std::string>({"101", "103", "105"})[i]);
    EXPECT_EQ((*lines)[i].at("worker"), "py-1");
    EXPECT_THAT((*lines)[i].at("executor"),
                StartsWith("ThreadPoolExecutor-0_"));
    executors.insert((*lines)[i].at("executor"));
  }
  EXPECT_EQ(executors.size(), 3u);  // One thread each: they ran at once.
  // The function prints what ran it, as in the seed.
  EXPECT_TRUE((*farm)->Stop().ok()) << (*farm)->Logs();
  const std::string printed = (*farm)->worker("py-1")->ReadAll();
  EXPECT_THAT(printed, HasSubstr("ThreadPoolExecutor-0_0\n"));
  EXPECT_THAT(printed, HasSubstr("ThreadPoolExecutor-0_2\n"));
}

// A Python worker of two kinds registered out of name order: each task runs
// as its own kind (the coordinator names it by its place in the hello).
TEST(KindsTest, PythonWorkerOfTwoKindsRunsEachTaskAsItsKind) {
  WorkerSpec spec = Python("py-2", 2);
  spec.command = {kPython,
                  std::string(QFARM_SOURCE_DIR) + "/tests/two_kinds_worker.py"};
  auto farm = LocalFarm::Start({spec});
  ASSERT_TRUE(farm.ok()) << farm.status();
  CommandResult r = (*farm)->Qfarm(
      {"map", "zeta:ab", "alpha:cd", "zeta:ef", "alpha:gh", "--output=json"});
  ASSERT_EQ(r.exit_code, 0) << Diagnose(r, **farm);
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(r.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 4u);
  const std::vector<std::string> values = {"AB", "dc", "EF", "hg"};
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ((*lines)[i].at("value"), values[i]) << i;
  }
  EXPECT_TRUE((*farm)->Stop().ok()) << (*farm)->Logs();
}

// In async mode the Python worker runs functions on its loop (blocking ones
// on the loop's threads); on SIGTERM it finishes what runs and exits 0.
TEST(KindsTest, PythonWorkerInAsyncModeDrainsOnSigterm) {
  WorkerSpec spec = Python("py-a", 3);
  spec.mode = "async";
  auto farm = LocalFarm::Start({spec});
  ASSERT_TRUE(farm.ok()) << farm.status();
  CommandResult fast = (*farm)->Qfarm({"map", "action:0", "action:0.5"});
  ASSERT_EQ(fast.exit_code, 0) << Diagnose(fast, **farm);
  EXPECT_THAT(fast.out, HasSubstr("100.5"));
  CommandResult submit = (*farm)->Qfarm({"submit", "action:2"});
  ASSERT_EQ(submit.exit_code, 0) << Diagnose(submit, **farm);
  const std::string job(absl::StripAsciiWhitespace(submit.out));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline &&
         !absl::StrContains((*farm)->Qfarm({"status", job}).out, "1 running")) {
    absl::SleepFor(absl::Milliseconds(20));  // Polling a condition.
  }
  (*farm)->worker("py-a")->Signal(SIGTERM);
  absl::StatusOr<int> code =
      (*farm)->worker("py-a")->WaitFor(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  CommandResult watched = (*farm)->Qfarm({"watch", job, "--output=json"});
  ASSERT_EQ(watched.exit_code, 0) << Diagnose(watched, **farm);
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(watched.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].at("value"), "102");
  EXPECT_THAT((*lines)[0].at("executor"),
              ::testing::AnyOf("asyncio", "uvloop"));
}

TEST(KindsTest, JobOfAKindNoWorkerOffersWaitsThenRuns) {
  auto farm =
      LocalFarm::Start({{.id = "builtin", .mode = "async", .slots = 4}});
  ASSERT_TRUE(farm.ok()) << farm.status();
  CommandResult submit =
      (*farm)->Qfarm({"submit", "reverse:ab", "reverse:cd", "reverse:ef"});
  ASSERT_EQ(submit.exit_code, 0) << Diagnose(submit, **farm);
  const std::string job(absl::StripAsciiWhitespace(submit.out));
  CommandResult status = (*farm)->Qfarm({"status", job});
  EXPECT_THAT(status.out,
              HasSubstr("3 tasks waiting: no connected worker offers kind "
                        "`reverse`"))
      << Diagnose(status, **farm);
  // Nothing else waits behind them.
  CommandResult echo = (*farm)->Qfarm({"map", "echo:x", "sleep:1ms"});
  EXPECT_EQ(echo.exit_code, 0) << Diagnose(echo, **farm);
  ASSERT_TRUE((*farm)->StartWorker(Example("example")).ok());
  CommandResult watched = (*farm)->Qfarm({"watch", job, "--output=json"});
  ASSERT_EQ(watched.exit_code, 0) << Diagnose(watched, **farm);
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(watched.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 3u);
  std::set<std::string> values;
  for (const JsonObject& line : *lines) {
    values.insert(line.at("value"));
    EXPECT_EQ(line.at("worker"), "example");
  }
  EXPECT_EQ(values, (std::set<std::string>{"ba", "dc", "fe"}));
  status = (*farm)->Qfarm({"status", job});
  EXPECT_THAT(status.out, ::testing::Not(HasSubstr("waiting")));
}

TEST(KindsTest, KindsFlagRefusesOtherKinds) {
  auto farm =
      LocalFarm::Start({{.id = "builtin", .mode = "thread", .slots = 2}},
                       {"--kinds=sleep,echo"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  CommandResult refused = (*farm)->Qfarm({"map", "echo:a", "reverse:x"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(refused.err,
              HasSubstr("kind \"reverse\" is not accepted here (accepted: "
                        "sleep, echo)"));
  CommandResult fine = (*farm)->Qfarm({"map", "echo:a"});
  EXPECT_EQ(fine.exit_code, 0) << Diagnose(fine, **farm);
}

TEST(KindsTest, HandlersThatThrowCrashOrAnswerTooMuch) {
  WorkerSpec t1 = {.id = "t-1",
                   .mode = "thread",
                   .slots = 2,
                   .extra_flags = {},
                   .command = {BinPath("qfarm-kinds-test-worker")}};
  WorkerSpec t2 = t1;
  t2.id = "t-2";
  auto farm = LocalFarm::Start({t1, t2});
  ASSERT_TRUE(farm.ok()) << farm.status();
  const std::string marker = (*farm)->log_dir() + "/crashed-once";
  CommandResult run = (*farm)->Qfarm({"map", "throw:boom", "big:2000000",
                                      absl::StrCat("crash:", marker),
                                      "reverse:ok", "--output=json"});
  EXPECT_EQ(run.exit_code, 1) << Diagnose(run, **farm);
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(run.out);
  ASSERT_TRUE(lines.ok()) << lines.status() << Diagnose(run, **farm);
  ASSERT_EQ(lines->size(), 4u);
  EXPECT_EQ((*lines)[0].at("status"), "failed");
  EXPECT_EQ((*lines)[0].at("error"), "exception: boom");
  EXPECT_EQ((*lines)[1].at("status"), "failed");
  EXPECT_THAT((*lines)[1].at("error"),
              HasSubstr("value of 2000000 bytes is over the result limit"));
  // The crash took its worker down; the task ran again on the other one.
  EXPECT_EQ((*lines)[2].at("status"), "ok") << (*lines)[2].at("error");
  EXPECT_EQ((*lines)[2].at("value"), "survived");
  EXPECT_EQ((*lines)[2].at("attempt"), "2");
  EXPECT_EQ((*lines)[3].at("value"), "ko");
}

// A worker built with the SDK is also the qfarm command line with its kinds:
// `map --local` runs them in-process, and `bench --workload=custom` runs
// them every way, farm methods starting this binary as their workers.
TEST(KindsTest, SdkWorkerRunsItsKindsLocallyAndInTheBench) {
  CommandResult local =
      RunCommand({BinPath("qfarm-example-worker"), "map", "--local",
                  "--mode=async", "reverse:hello", "echo:x"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_THAT(local.out, HasSubstr("local/async"));
  EXPECT_THAT(local.out, HasSubstr("olleh"));
  CommandResult bench =
      RunCommand({BinPath("qfarm-example-worker"), "bench", "--workload=custom",
                  "--spec=reverse:hello", "--tasks=50",
                  "--methods=local:serial,local:thread,local:async,local:auto,"
                  "farm:serial,farm:thread,farm:async,farm:auto",
                  "--workers=1"});
  ASSERT_EQ(bench.exit_code, 0) << bench.out << bench.err;
  for (const char* method :
       {"local:serial", "local:thread", "local:async", "local:auto",
        "farm:serial", "farm:thread", "farm:async", "farm:auto"}) {
    EXPECT_THAT(bench.out, HasSubstr(method));
  }
  EXPECT_THAT(bench.out, HasSubstr("custom: 50 x reverse:hello"));
}

}  // namespace
}  // namespace qfarm::testing
