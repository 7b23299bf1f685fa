#include "common/auth.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm {
namespace {

using ::testing::HasSubstr;

TEST(TokenAuthTest, NoTokensLetEveryoneIn) {
  TokenAuth auth;
  EXPECT_TRUE(auth.Check(std::nullopt, Role::kClient).ok());
  EXPECT_TRUE(auth.Check("Bearer x", Role::kWorker).ok());
  EXPECT_FALSE(auth.enabled());
}

TEST(TokenAuthTest, MissingWrongRightAndWrongRole) {
  TokenAuth auth("client-secret", "worker-secret");
  EXPECT_EQ(auth.Check(std::nullopt, Role::kClient).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Check("Bearer nope", Role::kClient).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Check("client-secret", Role::kClient).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(auth.Check("Bearer client-secret", Role::kClient).ok());
  EXPECT_TRUE(auth.Check("Bearer worker-secret", Role::kWorker).ok());
  absl::Status wrong_role = auth.Check("Bearer client-secret", Role::kWorker);
  EXPECT_EQ(wrong_role.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth.Check("Bearer worker-secret", Role::kClient).code(),
            absl::StatusCode::kPermissionDenied);
  // Messages never repeat a token.
  EXPECT_THAT(wrong_role.message(), ::testing::Not(HasSubstr("secret")));
}

TEST(TokenAuthTest, OnlyOneRoleProtected) {
  TokenAuth auth("", "worker-secret");
  EXPECT_TRUE(auth.Check(std::nullopt, Role::kClient).ok());
  EXPECT_EQ(auth.Check(std::nullopt, Role::kWorker).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(ConstantTimeEqualsTest, Compares) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(ReadTokenFileTest, TrimsAndChecks) {
  const std::string path = ::testing::TempDir() + "/token";
  std::ofstream(path) << "  s3cret\n";
  EXPECT_EQ(*ReadTokenFile(path), "s3cret");
  std::ofstream(path) << "\n";
  EXPECT_EQ(ReadTokenFile(path).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::ofstream(path) << "two words";
  EXPECT_EQ(ReadTokenFile(path).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTokenFile(path + ".missing").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace qfarm
