// Sizes written as people write them on a command line: "1GiB", "512MiB",
// "64KB", "100" (bytes).
//
//   ASSIGN_OR_RETURN(uint64_t bytes, ParseByteSize("1GiB"));  // 1073741824
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qfarm {

// A whole number followed by an optional unit: B, KB/MB/GB/TB (powers of
// 1000) or KiB/MiB/GiB/TiB (powers of 1024), case-insensitive, with no space
// between. INVALID_ARGUMENT, quoting the text, for anything else or a size
// past 2^63.
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// The size in the largest binary unit that divides it: "1GiB", "1536KiB",
// "100B".
std::string FormatByteSize(uint64_t bytes);

}  // namespace qfarm
