// End to end: the real qfarm-coordinator, two qfarm-worker processes and the
// qfarm CLI, in each worker mode.
#include <openssl/sha.h>
#include <signal.h>

#include <regex>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/http_test_server.h"
#include "tests/local_farm.h"

namespace qfarm::testing {
namespace {

using ::testing::HasSubstr;

// SHA-256("qfarm") hashed `units` more times, in lowercase hex.
std::string ExpectedCpu(int units) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>("qfarm"), 5, digest);
  for (int i = 0; i < units; ++i) SHA256(digest, sizeof(digest), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

int64_t Field(const JsonObject& o, const std::string& key) {
  int64_t v = -1;
  auto it = o.find(key);
  if (it == o.end() || !absl::SimpleAtoi(it->second, &v)) return -1;
  return v;
}

std::string Str(const JsonObject& o, const std::string& key) {
  auto it = o.find(key);
  return it == o.end() ? "<missing " + key + ">" : it->second;
}

class FarmTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto farm = LocalFarm::Start({{.id = "worker-1", .mode = GetParam()},
                                  {.id = "worker-2", .mode = GetParam()}});
    ASSERT_TRUE(farm.ok()) << farm.status();
    farm_ = *std::move(farm);
  }

  void TearDown() override {
    if (farm_ != nullptr) {
      absl::Status stopped = farm_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped;
    }
  }

  std::regex ExecutorPattern() const {
    if (GetParam() == "serial") return std::regex("serial");
    if (GetParam() == "async") return std::regex("async");
    if (GetParam() == "auto") return std::regex("async|cpu-[0-9]+");
    return std::regex("thread-[0-2]");
  }

  std::string Diagnose(const CommandResult& r) const {
    return absl::StrCat("exit ", r.exit_code, "\nstdout:\n", r.out,
                        "\nstderr:\n", r.err, "\n", farm_->Logs());
  }

  std::unique_ptr<LocalFarm> farm_;
};

TEST_P(FarmTest, SeedMapPrintsResultsInInputOrderWithExecutors) {
  CommandResult r = farm_->Qfarm(
      {"--output=json", "map", "sleep:1s", "sleep:3s", "sleep:5s"});
  ASSERT_EQ(r.exit_code, 0) << Diagnose(r);
  auto lines = ParseJsonLines(r.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 3u) << r.out;
  const int64_t ms[] = {1000, 3000, 5000};
  for (int i = 0; i < 3; ++i) {
    const JsonObject& o = (*lines)[i];
    EXPECT_EQ(Field(o, "index"), i);
    EXPECT_EQ(Str(o, "status"), "ok");
    EXPECT_EQ(Str(o, "value"), absl::StrCat(ms[i]));
    EXPECT_THAT(Str(o, "worker"), ::testing::AnyOf("worker-1", "worker-2"));
    EXPECT_TRUE(std::regex_match(Str(o, "executor"), ExecutorPattern()))
        << Str(o, "executor");
    EXPECT_EQ(Field(o, "attempt"), 1);
    EXPECT_LE(Field(o, "queued_us"), Field(o, "dispatched_us"));
    EXPECT_GE(Field(o, "finished_us") - Field(o, "started_us"), ms[i] * 1000);
  }
  EXPECT_THAT(r.err, HasSubstr("3 tasks: 3 ok"));
}

TEST_P(FarmTest, SubmitThenWatch) {
  CommandResult submitted = farm_->Qfarm({"submit", "sleep:1s", "echo:x"});
  ASSERT_EQ(submitted.exit_code, 0) << Diagnose(submitted);
  const std::string job(absl::StripAsciiWhitespace(submitted.out));
  CommandResult watched = farm_->Qfarm({"watch", job, "--output=json"});
  ASSERT_EQ(watched.exit_code, 0) << Diagnose(watched);
  auto lines = ParseJsonLines(watched.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 2u);
  std::set<std::string> values;
  for (const JsonObject& o : *lines) {
    EXPECT_EQ(Str(o, "job_id"), job);
    values.insert(Str(o, "value"));
  }
  EXPECT_EQ(values, (std::set<std::string>{"1000", "x"}));
  CommandResult status = farm_->Qfarm({"status", job});
  EXPECT_EQ(status.exit_code, 0) << Diagnose(status);
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat("job ", job, ": done")));
}

TEST_P(FarmTest, ThousandTasksComeBackCheckedAndInOrder) {
  std::string specs;
  std::vector<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    switch (i % 3) {
      case 0:
        absl::StrAppend(&specs, "echo:item-", i, "\n");
        expected.push_back(absl::StrCat("item-", i));
        break;
      case 1:
        absl::StrAppend(&specs, "cpu:", i % 40, "\n");
        expected.push_back(ExpectedCpu(i % 40));
        break;
      default:
        absl::StrAppend(&specs, "sleep:", i % 7, "ms\n");
        expected.push_back(absl::StrCat(i % 7));
    }
  }
  CommandResult r = farm_->Qfarm({"map", "--from=-", "--output=json"}, specs);
  ASSERT_EQ(r.exit_code, 0) << Diagnose(r);
  auto lines = ParseJsonLines(r.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 1000u);
  std::set<std::string> workers;
  for (int i = 0; i < 1000; ++i) {
    const JsonObject& o = (*lines)[i];
    ASSERT_EQ(Field(o, "index"), i);
    EXPECT_EQ(Str(o, "status"), "ok") << Str(o, "error");
    EXPECT_EQ(Str(o, "value"), expected[i]) << "index " << i;
    EXPECT_TRUE(std::regex_match(Str(o, "executor"), ExecutorPattern()));
    workers.insert(Str(o, "worker"));
  }
  EXPECT_EQ(workers, (std::set<std::string>{"worker-1", "worker-2"}));
}

TEST_P(FarmTest, TextOutputNamesTheExecutor) {
  CommandResult r = farm_->Qfarm({"map", "echo:a", "echo:b", "--repeat=2"});
  ASSERT_EQ(r.exit_code, 0) << Diagnose(r);
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << r.out;
  const std::regex line(
      R"(\s*(\d+)  ok\s+worker-[12]/(serial|thread-\d|async)\s+([ab]))");
  const char* values[] = {"a", "b", "a", "b"};
  for (int i = 0; i < 4; ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, line)) << lines[i];
    EXPECT_EQ(m[1], absl::StrCat(i));
    EXPECT_EQ(m[3], values[i]);
  }
}

TEST_P(FarmTest, WorkersAreListed) {
  CommandResult r = farm_->Qfarm({"workers"});
  ASSERT_EQ(r.exit_code, 0) << Diagnose(r);
  EXPECT_THAT(r.out, HasSubstr("worker-1"));
  EXPECT_THAT(r.out, HasSubstr("worker-2"));
  EXPECT_THAT(r.out, HasSubstr(GetParam()));
}

TEST_P(FarmTest, CancelStopsAJobAndWorkersTakeTheNext) {
  CommandResult submitted =
      farm_->Qfarm({"submit", "sleep:60s", "--repeat=20"});
  ASSERT_EQ(submitted.exit_code, 0) << Diagnose(submitted);
  const std::string job(absl::StripAsciiWhitespace(submitted.out));
  CommandResult cancelled = farm_->Qfarm({"cancel", job});
  ASSERT_EQ(cancelled.exit_code, 0) << Diagnose(cancelled);
  EXPECT_THAT(cancelled.out, HasSubstr("cancelled 20 tasks"));
  CommandResult watched = farm_->Qfarm({"watch", job, "--output=json"});
  EXPECT_EQ(watched.exit_code, 1) << Diagnose(watched);
  auto lines = ParseJsonLines(watched.out);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 20u);
  for (const JsonObject& o : *lines) EXPECT_EQ(Str(o, "status"), "cancelled");
  CommandResult status = farm_->Qfarm({"status", job});
  EXPECT_THAT(status.out, HasSubstr("cancelled, 20 tasks"));
  // The running sleeps were stopped: the slots are free for the next job.
  CommandResult next = farm_->Qfarm({"map", "echo:after", "--repeat=6"});
  EXPECT_EQ(next.exit_code, 0) << Diagnose(next);
}

TEST_P(FarmTest, FailuresAndUnknownJobsSetTheExitCode) {
  CommandResult timed_out = farm_->Qfarm({"map", "sleep:10s@timeout=50ms"});
  EXPECT_EQ(timed_out.exit_code, 1) << Diagnose(timed_out);
  EXPECT_THAT(timed_out.out, HasSubstr("timed_out"));
  CommandResult unknown = farm_->Qfarm({"status", "999999"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));
  CommandResult bad = farm_->Qfarm({"map", "n/p:1s"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("kind name \"n/p\" must be letters"));
}

// Ctrl-C on `qfarm map` cancels the job: the finished task keeps its
// result, the rest report cancelled, and the workers take the next job.
TEST_P(FarmTest, CtrlCOnMapCancelsTheJob) {
  auto map = Subprocess::Start(
      {BinPath("qfarm"), absl::StrCat("--coordinator=", farm_->address()),
       "map", "echo:first", "sleep:60s", "sleep:60s", "sleep:60s"},
      {.stderr_path = farm_->log_dir() + "/map.err"});
  ASSERT_TRUE(map.ok()) << map.status();
  // The first line is printed while the job is watched, after the Ctrl-C
  // handler is in place.
  absl::StatusOr<std::string> first = (*map)->ReadLine(absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status() << farm_->Logs();
  EXPECT_THAT(*first, HasSubstr("first"));
  (*map)->Signal(SIGINT);
  const std::string rest = (*map)->ReadAll();
  absl::StatusOr<int> code = (*map)->WaitFor(absl::Seconds(30));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
  std::vector<std::string> lines =
      absl::StrSplit(rest, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << rest;
  for (const std::string& line : lines)
    EXPECT_THAT(line, HasSubstr("cancelled"));
  CommandResult next = farm_->Qfarm({"map", "echo:after", "--repeat=6"});
  EXPECT_EQ(next.exit_code, 0) << Diagnose(next);
}

// Real GETs through the farm: all succeed against a delaying server, and
// errors are per task.
TEST_P(FarmTest, HttpTasksThroughTheFarm) {
  auto server = HttpTestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  // Serial workers run one GET at a time: fewer tasks keep the test short.
  const int gets = GetParam() == "serial" ? 20 : 200;
  std::string specs;
  for (int i = 0; i < gets; ++i) {
    absl::StrAppend(&specs, "http:", (*server)->Url("/delay/100"), "\n");
  }
  absl::StrAppend(&specs, "http:", (*server)->Url("/status/503"), "\n");
  absl::StrAppend(&specs, "http:", (*server)->Url("/close"), "\n");
  absl::StrAppend(&specs, "http:", (*server)->Url("/hang"), "@timeout=200ms\n");
  absl::StrAppend(&specs, "http:", (*server)->Url("/bytes/5000"), "\n");
  CommandResult r = farm_->Qfarm({"map", "--from=-", "--output=json"}, specs);
  EXPECT_EQ(r.exit_code, 1) << Diagnose(r);  // Three tasks fail on purpose.
  auto lines = ParseJsonLines(r.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), static_cast<size_t>(gets + 4));
  for (int i = 0; i < gets; ++i) {
    EXPECT_EQ(Str((*lines)[i], "status"), "ok") << Str((*lines)[i], "error");
    EXPECT_THAT(Str((*lines)[i], "value"),
                ::testing::StartsWith("status=200 bytes=14 "));
  }
  EXPECT_EQ(Str((*lines)[gets], "status"), "failed");
  EXPECT_THAT(Str((*lines)[gets], "error"), HasSubstr("HTTP 503"));
  EXPECT_EQ(Str((*lines)[gets + 1], "status"), "failed");
  EXPECT_EQ(Str((*lines)[gets + 2], "status"), "timed_out");
  EXPECT_EQ(Str((*lines)[gets + 3], "status"), "ok");
  EXPECT_THAT(Str((*lines)[gets + 3], "value"),
              ::testing::StartsWith("status=200 bytes=5000 "));
}

// The same job in-process and through the farm gives the same values (http
// timings aside).
TEST_P(FarmTest, LocalAndFarmGiveTheSameValues) {
  auto server = HttpTestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const std::vector<std::string> specs = {
      "echo:same",
      "cpu:500",
      "sleep:5ms",
      "http:" + (*server)->Url("/bytes/777"),
      "http:" + (*server)->Url("/status/404"),
      "sleep:5s@timeout=20ms"};
  auto values = [](const std::string& out) {
    std::vector<std::string> v;
    auto lines = ParseJsonLines(out);
    if (!lines.ok()) return v;
    for (const JsonObject& o : *lines) {
      std::string value = Str(o, "value");
      value = value.substr(0, value.find(" ttfb_ms="));
      v.push_back(Str(o, "status") + " " + value + " " + Str(o, "error"));
    }
    return v;
  };
  std::vector<std::string> args = {"map", "--output=json"};
  args.insert(args.end(), specs.begin(), specs.end());
  CommandResult farm = farm_->Qfarm(args);
  args.push_back("--local");
  args.push_back("--mode=" + GetParam());
  CommandResult local = RunCommand([&] {
    std::vector<std::string> argv = {BinPath("qfarm")};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }());
  EXPECT_EQ(farm.exit_code, 1) << Diagnose(farm);
  EXPECT_EQ(local.exit_code, 1) << local.err;
  ASSERT_EQ(values(farm.out).size(), specs.size()) << farm.out;
  EXPECT_EQ(values(farm.out), values(local.out));
}

INSTANTIATE_TEST_SUITE_P(Modes, FarmTest,
                         ::testing::Values("serial", "thread", "async", "auto"),
                         [](const auto& info) { return info.param; });

class LocalCtrlCTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LocalCtrlCTest, CtrlCOnLocalMapCancelsRunningTasks) {
  TempDir dir;
  auto map = Subprocess::Start(
      {BinPath("qfarm"), "map", "--local", "--mode=" + GetParam(), "echo:first",
       "sleep:60s", "cpu:1000000000"},
      {.stderr_path = dir.path() + "/err"});
  ASSERT_TRUE(map.ok()) << map.status();
  absl::StatusOr<std::string> first = (*map)->ReadLine(absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  (*map)->Signal(SIGINT);
  const std::string rest = (*map)->ReadAll();
  absl::StatusOr<int> code = (*map)->WaitFor(absl::Seconds(30));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
  std::vector<std::string> lines =
      absl::StrSplit(rest, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << rest;
  for (const std::string& line : lines)
    EXPECT_THAT(line, HasSubstr("cancelled"));
}

INSTANTIATE_TEST_SUITE_P(Modes, LocalCtrlCTest,
                         ::testing::Values("serial", "thread", "async", "auto"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qfarm::testing
