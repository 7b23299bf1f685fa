#include "common/byte_size.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm {
namespace {

using ::testing::HasSubstr;

TEST(ByteSizeTest, ParsesUnits) {
  EXPECT_EQ(*ParseByteSize("100"), 100u);
  EXPECT_EQ(*ParseByteSize("100B"), 100u);
  EXPECT_EQ(*ParseByteSize("64KB"), 64'000u);
  EXPECT_EQ(*ParseByteSize("64kib"), 65'536u);
  EXPECT_EQ(*ParseByteSize("512MiB"), uint64_t{512} << 20);
  EXPECT_EQ(*ParseByteSize("1GiB"), uint64_t{1} << 30);
  EXPECT_EQ(*ParseByteSize("2GB"), 2'000'000'000u);
  EXPECT_EQ(*ParseByteSize("3TiB"), uint64_t{3} << 40);
  EXPECT_EQ(*ParseByteSize("0"), 0u);
}

TEST(ByteSizeTest, RefusesWhatIsNotASize) {
  for (const char* text : {"", "GiB", "-1", "1.5GiB", "1 GiB", "1GiBs", "1XB",
                           "ten", "99999999999999999999", "9000000TiB"}) {
    absl::StatusOr<uint64_t> size = ParseByteSize(text);
    ASSERT_FALSE(size.ok()) << text;
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(size.status().message()),
                HasSubstr("expected a size such as 1GiB"));
  }
}

TEST(ByteSizeTest, QuotesLongInputShort) {
  const std::string text(10'000, '9');
  absl::StatusOr<uint64_t> size = ParseByteSize(text);
  ASSERT_FALSE(size.ok());
  EXPECT_LT(size.status().message().size(), 200u);
}

TEST(ByteSizeTest, FormatsInTheLargestUnitThatDivides) {
  EXPECT_EQ(FormatByteSize(uint64_t{1} << 30), "1GiB");
  EXPECT_EQ(FormatByteSize(1536 * 1024), "1536KiB");
  EXPECT_EQ(FormatByteSize(100), "100B");
  EXPECT_EQ(FormatByteSize(0), "0B");
  EXPECT_EQ(*ParseByteSize(FormatByteSize(uint64_t{5} << 40)),
            uint64_t{5} << 40);
}

}  // namespace
}  // namespace qfarm
