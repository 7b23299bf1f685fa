// Bearer tokens: who may call which service. The coordinator holds one token
// for clients and one for workers (each optional); callers send theirs as
// `authorization: Bearer TOKEN` metadata. Tokens are compared in constant
// time and never logged.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qfarm {

enum class Role { kClient, kWorker };

// Thread-safe (immutable after construction).
class TokenAuth {
 public:
  // An empty token means that role needs none.
  TokenAuth(std::string client_token, std::string worker_token)
      : client_token_(std::move(client_token)),
        worker_token_(std::move(worker_token)) {}
  TokenAuth() = default;

  // `authorization` is the header's value, or nullopt when absent. OK when
  // the role needs no token or the right one came; PERMISSION_DENIED when
  // the other role's token came; UNAUTHENTICATED otherwise.
  absl::Status Check(std::optional<absl::string_view> authorization,
                     Role role) const;

  bool enabled() const {
    return !client_token_.empty() || !worker_token_.empty();
  }

 private:
  std::string client_token_;
  std::string worker_token_;
};

// Equal contents, in time that depends only on the lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// A token file's contents without surrounding whitespace. NOT_FOUND when
// it cannot be read, INVALID_ARGUMENT when empty or holding whitespace or
// control characters inside.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// "Bearer TOKEN".
std::string BearerHeader(absl::string_view token);

}  // namespace qfarm
