#include "common/flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Fixture {
  std::string address = "127.0.0.1:50051";
  int64_t slots = 4;
  bool local = false;
  absl::Duration timeout = absl::ZeroDuration();
  FlagSet flags{"usage: test"};
  Fixture() {
    flags.String("coordinator", &address, "where");
    flags.Int("slots", &slots, "how many", 1, 100);
    flags.Bool("local", &local, "in-process");
    flags.Duration("timeout", &timeout, "limit");
  }
};

TEST(FlagSetTest, FlagsAnywhereAmongPositionals) {
  Fixture f;
  auto args = f.flags.Parse(
      {"--coordinator=h:1", "map", "--slots", "7", "sleep:1s", "--local"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(*args, ElementsAre("map", "sleep:1s"));
  EXPECT_EQ(f.address, "h:1");
  EXPECT_EQ(f.slots, 7);
  EXPECT_TRUE(f.local);
  EXPECT_TRUE(f.flags.WasSet("slots"));
  EXPECT_FALSE(f.flags.WasSet("timeout"));
}

TEST(FlagSetTest, DoubleDashEndsFlags) {
  Fixture f;
  auto args = f.flags.Parse({"map", "--", "--local", "echo:x"});
  ASSERT_TRUE(args.ok());
  EXPECT_THAT(*args, ElementsAre("map", "--local", "echo:x"));
  EXPECT_FALSE(f.local);
}

TEST(FlagSetTest, ErrorsNameTheFlag) {
  Fixture f;
  EXPECT_THAT(f.flags.Parse({"--bogus=1"}).status().message(),
              HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(f.flags.Parse({"--slots=0"}).status().message(),
              HasSubstr("--slots=0: must be within 1..100"));
  EXPECT_THAT(f.flags.Parse({"--slots=x"}).status().message(),
              HasSubstr("not a whole number"));
  EXPECT_THAT(f.flags.Parse({"--slots"}).status().message(),
              HasSubstr("needs a value"));
  EXPECT_THAT(f.flags.Parse({"--timeout=5"}).status().message(),
              HasSubstr("needs a unit"));
  EXPECT_THAT(f.flags.Parse({"--local=maybe"}).status().message(),
              HasSubstr("expected true or false"));
}

TEST(FlagSetTest, BoolForms) {
  Fixture f;
  ASSERT_TRUE(f.flags.Parse({"--local=true", "--nolocal"}).ok());
  EXPECT_FALSE(f.local);
  ASSERT_TRUE(f.flags.Parse({"--timeout=1500ms"}).ok());
  EXPECT_EQ(f.timeout, absl::Milliseconds(1500));
}

TEST(FlagSetTest, Help) {
  Fixture f;
  ASSERT_TRUE(f.flags.Parse({"map", "--help"}).ok());
  EXPECT_TRUE(f.flags.help_requested());
  EXPECT_THAT(f.flags.Help(), HasSubstr("--slots=VALUE\n      how many "
                                        "(default: 4)"));
}

}  // namespace
}  // namespace qfarm
