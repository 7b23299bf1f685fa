// One set of limits, through the real binaries: a task that a coordinator
// accepts under its flags (here over the default limits) never fails on a
// worker for a limit, whatever the worker's mode; and an error that quotes a
// refused spec keeps it short (docs/ARCHITECTURE.md, "One set of limits").
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/abbreviate.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"

namespace qfarm::testing {
namespace {

using ::testing::HasSubstr;

// A payload whose every byte counts: a cut or shifted value differs.
std::string Payload(size_t size) {
  std::string text(size, ' ');
  for (size_t i = 0; i < size; ++i) text[i] = static_cast<char>('a' + i % 26);
  return text;
}

// A command's outcome for a failure message, its (long) output cut short.
std::string Diagnose(const CommandResult& r, const LocalFarm* farm) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout:\n",
                      Abbreviate(r.out, 500), "\nstderr:\n",
                      Abbreviate(r.err, 2000), "\n",
                      farm != nullptr ? farm->Logs() : "");
}

// What the error of a refused spec must be: one line, short, giving the
// spec's size.
void ExpectShortErrorLine(const CommandResult& run, const std::string& size) {
  EXPECT_EQ(run.exit_code, 2) << Diagnose(run, nullptr);
  const std::vector<std::string> lines =
      absl::StrSplit(run.err, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 1u) << Abbreviate(run.err, 2000);
  EXPECT_LT(run.err.size(), 400u) << Abbreviate(run.err, 2000);
  EXPECT_THAT(run.err, HasSubstr(absl::StrCat("... (", size, " bytes)")));
}

class LimitsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto farm =
        LocalFarm::Start({{.id = "w1", .mode = GetParam(), .slots = 2}},
                         {"--max-payload-bytes=4194304", "--max-sleep=48h",
                          "--max-cpu-units=4000000000"});
    ASSERT_TRUE(farm.ok()) << farm.status();
    farm_ = *std::move(farm);
  }
  void TearDown() override {
    if (farm_ != nullptr) {
      EXPECT_TRUE(farm_->Stop().ok());
    }
  }

  std::unique_ptr<LocalFarm> farm_;
};

TEST_P(LimitsTest, EchoOfTwoMegabytesComesBackWhole) {
  const std::string payload = Payload(2'000'000);
  CommandResult run = farm_->Qfarm({"map", "--from=-", "--output=json"},
                                   absl::StrCat("echo:", payload, "\n"));
  ASSERT_EQ(run.exit_code, 0) << Diagnose(run, farm_.get());
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(run.out);
  ASSERT_TRUE(lines.ok()) << lines.status() << Diagnose(run, farm_.get());
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].at("status"), "ok")
      << Abbreviate((*lines)[0]["error"], 500);
  EXPECT_EQ((*lines)[0].at("value").size(), payload.size());
  EXPECT_TRUE((*lines)[0].at("value") == payload);
}

// A sleep and a cpu task over the default maxima (24 h, 10^9 units) but
// within this coordinator's run until their timeouts stop them: timed out,
// not failed as invalid.
TEST_P(LimitsTest, SleepAndCpuOverTheDefaultMaximaRunToTheirTimeouts) {
  CommandResult run =
      farm_->Qfarm({"map", "sleep:25h@timeout=100ms",
                    "cpu:2000000000@timeout=100ms", "--output=json"});
  EXPECT_EQ(run.exit_code, 1) << Diagnose(run, farm_.get());
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(run.out);
  ASSERT_TRUE(lines.ok()) << lines.status() << Diagnose(run, farm_.get());
  ASSERT_EQ(lines->size(), 2u);
  for (const JsonObject& line : *lines) {
    EXPECT_EQ(line.at("status"), "timed_out") << line.at("error");
  }
}

// Over this coordinator's limit: it refuses the job, in a short line.
TEST_P(LimitsTest, CoordinatorRefusesWhatIsOverItsLimitInAShortLine) {
  CommandResult run = farm_->Qfarm(
      {"map", "--from=-"}, absl::StrCat("echo:", Payload(5'000'000), "\n"));
  EXPECT_NE(run.exit_code, 0) << Diagnose(run, farm_.get());
  EXPECT_THAT(run.err,
              HasSubstr("text of 5000000 bytes is over the maximum of 4194304"))
      << Diagnose(run, farm_.get());
  EXPECT_LT(run.err.size(), 400u) << Diagnose(run, farm_.get());
}

// A spec the CLI refuses itself (a URL that is not one) is quoted short.
TEST_P(LimitsTest, RefusedSpecIsQuotedShort) {
  CommandResult run = farm_->Qfarm(
      {"map", "--from=-"}, absl::StrCat("http:", Payload(2'000'000), "\n"));
  ExpectShortErrorLine(run, "2000005");
  EXPECT_THAT(run.err, HasSubstr("task spec \"http:abcdefg"));
  EXPECT_THAT(run.err, HasSubstr("must be an http:// or https:// URL"));
}

INSTANTIATE_TEST_SUITE_P(Modes, LimitsTest,
                         ::testing::Values("thread", "async"));

// --local has no coordinator: the CLI checks the default limits, and its
// error quotes the spec short.
TEST(LocalLimitsTest, RefusedSpecGivesAShortErrorLine) {
  CommandResult run =
      RunCommand({BinPath("qfarm"), "map", "--local", "--from=-"},
                 absl::StrCat("echo:", Payload(2'000'000), "\n"));
  ExpectShortErrorLine(run, "2000005");
  EXPECT_THAT(
      run.err,
      HasSubstr("text of 2000000 bytes is over the maximum of 1048576"));
}

}  // namespace
}  // namespace qfarm::testing
