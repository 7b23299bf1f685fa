#include "common/byte_size.h"

#include <cstddef>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace qfarm {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  auto bad = [text](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text.substr(0, 64), text.size() > 64 ? "..." : "", "\": ", why,
        " (expected a size such as 1GiB, 512MiB, 64KB or 100)"));
  };
  size_t digits = 0;
  while (digits < text.size() && absl::ascii_isdigit(text[digits])) ++digits;
  if (digits == 0) return bad("not a size");
  uint64_t number = 0;
  if (!absl::SimpleAtoi(text.substr(0, digits), &number)) {
    return bad("too large");
  }
  const std::string unit = absl::AsciiStrToLower(text.substr(digits));
  struct Unit {
    const char* name;
    uint64_t bytes;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"b", 1},
      {"kb", 1000},
      {"mb", 1000 * 1000},
      {"gb", 1000 * 1000 * 1000},
      {"tb", uint64_t{1000} * 1000 * 1000 * 1000},
      {"kib", uint64_t{1} << 10},
      {"mib", uint64_t{1} << 20},
      {"gib", uint64_t{1} << 30},
      {"tib", uint64_t{1} << 40},
  };
  for (const Unit& u : kUnits) {
    if (unit != u.name) continue;
    constexpr uint64_t kMax = uint64_t{1} << 63;
    if (number > kMax / u.bytes) return bad("too large");
    return number * u.bytes;
  }
  return bad("unknown unit");
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t unit = 0;
  while (unit + 1 < std::size(kUnits) && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return absl::StrCat(bytes, kUnits[unit]);
}

}  // namespace qfarm
