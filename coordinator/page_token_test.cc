#include "coordinator/page_token.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/escaping.h"

namespace qfarm::coordinator {
namespace {

PageTokens::Key KeyOf(unsigned char fill) {
  PageTokens::Key key;
  key.fill(fill);
  return key;
}

TEST(PageTokensTest, ReadsBackWhatItIssued) {
  const PageTokens tokens(KeyOf(1));
  for (uint64_t position :
       {uint64_t{0}, uint64_t{1}, uint64_t{250}, ~uint64_t{0}}) {
    absl::StatusOr<uint64_t> read = tokens.Read(tokens.Issue(3, position), 3);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, position);
  }
}

TEST(PageTokensTest, RefusesATokenOfAnotherKey) {
  const std::string token = PageTokens(KeyOf(1)).Issue(0, 42);
  absl::StatusOr<uint64_t> read = PageTokens(KeyOf(2)).Read(token, 0);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PageTokens::WithRandomKey()
                .Read(PageTokens::WithRandomKey().Issue(0, 42), 0)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PageTokensTest, RefusesATokenOfAnotherQuery) {
  const PageTokens tokens(KeyOf(1));
  EXPECT_EQ(tokens.Read(tokens.Issue(2, 42), 3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PageTokensTest, RefusesEveryAlteredByte) {
  const PageTokens tokens(KeyOf(1));
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(tokens.Issue(0, 42), &raw));
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string altered = raw;
    altered[i] = static_cast<char>(altered[i] ^ 0x01);
    EXPECT_EQ(
        tokens.Read(absl::WebSafeBase64Escape(altered), 0).status().code(),
        absl::StatusCode::kInvalidArgument)
        << "byte " << i;
  }
}

TEST(PageTokensTest, RefusesWhatIsNotAToken) {
  const PageTokens tokens(KeyOf(1));
  const std::string good = tokens.Issue(0, 42);
  for (const std::string& bad :
       {std::string("x"), std::string("!!!!"), good + "AA",
        good.substr(0, good.size() - 2), std::string(200, 'A')}) {
    EXPECT_EQ(tokens.Read(bad, 0).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace qfarm::coordinator
