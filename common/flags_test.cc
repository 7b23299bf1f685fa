#include "common/flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_coordinator, "127.0.0.1:50051", "where");
ABSL_FLAG(int64_t, test_slots, 4, "how many");
ABSL_FLAG(bool, test_local, false, "in-process");
ABSL_FLAG(absl::Duration, test_timeout, absl::ZeroDuration(), "limit");
ABSL_FLAG(int64_t, test_unbounded, 0, "any number");

namespace qfarm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CommandLineTest : public ::testing::Test {
 protected:
  const CommandLine command_line_{
      "usage: test",
      {Flag(FLAGS_test_coordinator), Flag(FLAGS_test_slots, 1, 100),
       Flag(FLAGS_test_local), Flag(FLAGS_test_timeout),
       Flag(FLAGS_test_unbounded)}};
};

TEST_F(CommandLineTest, FlagsAnywhereAmongPositionals) {
  auto args =
      command_line_.Parse({"--test-coordinator=h:1", "map", "--test-slots", "7",
                           "sleep:1s", "--test-local", "-"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positional, ElementsAre("map", "sleep:1s", "-"));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_coordinator), "h:1");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_slots), 7);
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_local));
  EXPECT_TRUE(args->Given("test-slots"));
  EXPECT_FALSE(args->Given("test-timeout"));
  EXPECT_FALSE(args->help);
}

TEST_F(CommandLineTest, DoubleDashEndsFlags) {
  auto args = command_line_.Parse({"map", "--", "--test-local", "echo:x"});
  ASSERT_TRUE(args.ok());
  EXPECT_THAT(args->positional, ElementsAre("map", "--test-local", "echo:x"));
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_local));
}

TEST_F(CommandLineTest, ErrorsNameTheFlagWithDashes) {
  auto message = [this](std::vector<std::string> args) {
    return std::string(command_line_.Parse(args).status().message());
  };
  EXPECT_THAT(message({"--bogus=1"}), HasSubstr("unknown flag --bogus"));
  // Abseil's own spelling is not ours.
  EXPECT_THAT(message({"--test_slots=2"}),
              HasSubstr("unknown flag --test_slots"));
  EXPECT_THAT(message({"--test-slots=0"}),
              HasSubstr("--test-slots=0: must be within 1..100"));
  EXPECT_THAT(message({"--test-slots=x"}),
              HasSubstr("--test-slots=x: not a whole number"));
  EXPECT_THAT(message({"--test-slots"}),
              HasSubstr("flag --test-slots needs a value"));
  EXPECT_THAT(message({"--test-timeout=5"}),
              HasSubstr("--test-timeout=5: expected a duration with a unit"));
  EXPECT_THAT(message({"--test-timeout=-1s"}),
              HasSubstr("--test-timeout=-1s: must not be negative"));
  EXPECT_THAT(message({"--test-local=maybe"}),
              HasSubstr("--test-local=maybe: expected true or false"));
  EXPECT_THAT(message({"--notest-slots"}),
              HasSubstr("unknown flag --notest-slots"));
}

TEST_F(CommandLineTest, ErrorsQuoteALongValueShort) {
  auto message = [this](std::vector<std::string> args) {
    return std::string(command_line_.Parse(args).status().message());
  };
  const std::string big(100'000, '9');
  for (const std::string& arg :
       {"--test-slots=" + big, "--test-slots=x" + big,
        "--test-timeout=-" + big + "s", "--test-local=" + big,
        "--bogus" + big + "=1"}) {
    const std::string error = message({arg});
    EXPECT_LT(error.size(), 200u) << error.substr(0, 300);
    EXPECT_THAT(error, HasSubstr("bytes)")) << error.substr(0, 300);
  }
}

TEST_F(CommandLineTest, EachParseStartsFromTheDefaults) {
  ASSERT_TRUE(command_line_.Parse({"--test-slots=9", "--test-local"}).ok());
  ASSERT_TRUE(command_line_.Parse({"--test-coordinator=h:2"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_slots), 4);
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_local));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_coordinator), "h:2");
}

TEST_F(CommandLineTest, ValuesAbseilParses) {
  ASSERT_TRUE(command_line_
                  .Parse({"--test-local=true", "--notest-local",
                          "--test-timeout=1500ms", "--test-unbounded=-9"})
                  .ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_local));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_timeout), absl::Milliseconds(1500));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_unbounded), -9);
  ASSERT_TRUE(
      command_line_.Parse({"-test-local=yes", "--test-timeout=0"}).ok());
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_local));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_timeout), absl::ZeroDuration());
}

TEST_F(CommandLineTest, HelpListsFlagsInOrderWithDefaults) {
  auto args = command_line_.Parse({"map", "--help"});
  ASSERT_TRUE(args.ok());
  EXPECT_TRUE(args->help);
  const std::string help = command_line_.Help();
  EXPECT_THAT(help, HasSubstr("usage: test\n\nFlags:\n  --test-coordinator="
                              "VALUE\n      where (default: 127.0.0.1:50051)"
                              "\n  --test-slots=VALUE\n      how many "
                              "(default: 4)\n  --test-local\n      in-process"
                              " (default: false)\n"));
  EXPECT_THAT(help, HasSubstr("--test-timeout=VALUE\n      limit (default: "
                              "0)"));
  EXPECT_THAT(help, HasSubstr("--help\n      show this help"));
}

}  // namespace
}  // namespace qfarm
