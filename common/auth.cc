#include "common/auth.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace qfarm {
namespace {

constexpr absl::string_view kBearer = "Bearer ";

}  // namespace

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

absl::Status TokenAuth::Check(std::optional<absl::string_view> authorization,
                              Role role) const {
  const std::string& wanted =
      role == Role::kClient ? client_token_ : worker_token_;
  const std::string& other =
      role == Role::kClient ? worker_token_ : client_token_;
  if (wanted.empty()) return absl::OkStatus();
  const char* service = role == Role::kClient ? "the client service (Farm)"
                                              : "the worker service";
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        absl::StrCat(service, " needs an authorization: Bearer token"));
  }
  absl::string_view token = *authorization;
  if (!absl::ConsumePrefix(&token, kBearer)) {
    return absl::UnauthenticatedError(
        "authorization metadata must be \"Bearer TOKEN\"");
  }
  if (ConstantTimeEquals(token, wanted)) return absl::OkStatus();
  if (!other.empty() && ConstantTimeEquals(token, other)) {
    return absl::PermissionDeniedError(
        absl::StrCat("this token is not allowed on ", service));
  }
  return absl::UnauthenticatedError(absl::StrCat("wrong token for ", service));
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat("token file ", path, " cannot be read"));
  }
  std::stringstream buffer;
  buffer << file.rdbuf();
  std::string token(absl::StripAsciiWhitespace(buffer.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path, " is empty"));
  }
  for (char c : token) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token file ", path,
          " holds whitespace or control characters inside the token"));
    }
  }
  return token;
}

std::string BearerHeader(absl::string_view token) {
  return absl::StrCat(kBearer, token);
}

}  // namespace qfarm
