#include "common/abbreviate.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm {
namespace {

TEST(AbbreviateTest, ShortTextIsKeptWhole) {
  EXPECT_EQ(Abbreviate(""), "");
  EXPECT_EQ(Abbreviate("echo:hi"), "echo:hi");
  const std::string exactly(kMaxQuotedBytes, 'x');
  EXPECT_EQ(Abbreviate(exactly), exactly);
}

TEST(AbbreviateTest, LongTextKeepsItsStartAndGivesItsSize) {
  const std::string big = "echo:" + std::string(2'000'000, 'x');
  const std::string cut = Abbreviate(big);
  EXPECT_EQ(cut, big.substr(0, kMaxQuotedBytes) + "... (2000005 bytes)");
  EXPECT_EQ(Abbreviate(std::string(kMaxQuotedBytes + 1, 'y')),
            std::string(kMaxQuotedBytes, 'y') + "... (65 bytes)");
}

TEST(AbbreviateTest, OtherLengths) {
  EXPECT_EQ(Abbreviate("abcdef", 3), "abc... (6 bytes)");
  EXPECT_EQ(Abbreviate("abcdef", 0), "... (6 bytes)");
  EXPECT_EQ(Abbreviate("abc", 3), "abc");
}

TEST(AbbreviateTest, NeverCutsAUtf8CharacterInTwo) {
  // "é" is two bytes (C3 A9), "€" three (E2 82 AC).
  EXPECT_EQ(Abbreviate("ab\xC3\xA9z", 3), "ab... (5 bytes)");
  EXPECT_EQ(Abbreviate("ab\xC3\xA9z", 4), "ab\xC3\xA9... (5 bytes)");
  EXPECT_EQ(Abbreviate("a\xE2\x82\xAC!", 2), "a... (5 bytes)");
  EXPECT_EQ(Abbreviate("a\xE2\x82\xAC!", 3), "a... (5 bytes)");
  EXPECT_EQ(Abbreviate("a\xE2\x82\xAC!", 4), "a\xE2\x82\xAC... (5 bytes)");
}

}  // namespace
}  // namespace qfarm
