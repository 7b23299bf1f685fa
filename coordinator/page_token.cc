#include "coordinator/page_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "common/logging.h"

namespace qfarm::coordinator {
namespace {

constexpr unsigned char kVersion = 1;
// Version, query (4 bytes), position (8 bytes), little-endian.
constexpr size_t kBodySize = 1 + 4 + 8;
// Of the HMAC's 32 bytes: forging one needs about 2^64 tries.
constexpr size_t kMacSize = 8;

void PutLittleEndian(uint64_t value, size_t bytes, unsigned char* out) {
  for (size_t i = 0; i < bytes; ++i) {
    out[i] = static_cast<unsigned char>(value >> (8 * i));
  }
}

uint64_t GetLittleEndian(const unsigned char* in, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) {
    value |= static_cast<uint64_t>(in[i]) << (8 * i);
  }
  return value;
}

using Mac = std::array<unsigned char, EVP_MAX_MD_SIZE>;

Mac MacOf(const PageTokens::Key& key, const unsigned char* body) {
  Mac mac{};
  unsigned int size = 0;
  const unsigned char* made =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), body,
           kBodySize, mac.data(), &size);
  QFARM_CHECK(made != nullptr && size >= kMacSize) << "HMAC-SHA256 failed";
  return mac;
}

absl::Status NotOurs() {
  return absl::InvalidArgumentError(
      "page_token: not a page token of this coordinator for this query (it "
      "was altered, issued for another filter, or issued by another "
      "coordinator or before a restart): list again from the first page");
}

}  // namespace

PageTokens PageTokens::WithRandomKey() {
  Key key;
  QFARM_CHECK(RAND_bytes(key.data(), static_cast<int>(key.size())) == 1)
      << "no random bytes for the page token key";
  return PageTokens(key);
}

std::string PageTokens::Issue(uint32_t query, uint64_t position) const {
  unsigned char token[kBodySize + kMacSize];
  token[0] = kVersion;
  PutLittleEndian(query, 4, token + 1);
  PutLittleEndian(position, 8, token + 5);
  const Mac mac = MacOf(key_, token);
  std::memcpy(token + kBodySize, mac.data(), kMacSize);
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(token), sizeof(token)));
}

absl::StatusOr<uint64_t> PageTokens::Read(absl::string_view token,
                                          uint32_t query) const {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) ||
      raw.size() != kBodySize + kMacSize) {
    return NotOurs();
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  const Mac mac = MacOf(key_, bytes);
  if (CRYPTO_memcmp(mac.data(), bytes + kBodySize, kMacSize) != 0 ||
      bytes[0] != kVersion || GetLittleEndian(bytes + 1, 4) != query) {
    return NotOurs();
  }
  return GetLittleEndian(bytes + 5, 8);
}

}  // namespace qfarm::coordinator
