// The authorization metadata of a call, for TokenAuth::Check.
#pragma once

#include <grpcpp/server_context.h>

#include <optional>

#include "absl/strings/string_view.h"

namespace qfarm::coordinator {

// The value of the call's `authorization` metadata, or nullopt.
inline std::optional<absl::string_view> AuthorizationOf(
    const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}

}  // namespace qfarm::coordinator
