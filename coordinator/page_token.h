// Page tokens of ListJobs: where the next page starts, signed so that a
// token is honoured only by the coordinator that issued it, unchanged, for
// the query it was issued for. A client cannot forge a token, so a token
// cannot make the coordinator start a page anywhere it did not choose.
//
//   PageTokens tokens = PageTokens::WithRandomKey();
//   std::string token = tokens.Issue(/*query=*/state, /*position=*/next);
//   absl::StatusOr<uint64_t> position = tokens.Read(token, state);
//
// A token is URL-safe base64 of a version byte, the query, the position and
// a truncated HMAC-SHA256 of them under the key. Thread-safe (immutable).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qfarm::coordinator {

class PageTokens {
 public:
  static constexpr size_t kKeySize = 32;
  using Key = std::array<unsigned char, kKeySize>;

  // A key from the operating system's random source: tokens die with the
  // process.
  static PageTokens WithRandomKey();
  explicit PageTokens(const Key& key) : key_(key) {}

  // The token for `position` in the listing asked by `query` (a number the
  // caller derives from the request's filters).
  std::string Issue(uint32_t query, uint64_t position) const;
  // The position `token` holds. INVALID_ARGUMENT when this key did not
  // issue it, it was altered, or it was issued for another query.
  absl::StatusOr<uint64_t> Read(absl::string_view token, uint32_t query) const;

 private:
  Key key_;
};

}  // namespace qfarm::coordinator
