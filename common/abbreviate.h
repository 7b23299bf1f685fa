// Errors that quote what a user gave (a task spec, a flag's value, a kind
// name, a URL) quote it through Abbreviate(), so a 2 MB spec makes a short
// error line and not a 2 MB one.
//
//   absl::StrCat("task spec \"", Abbreviate(spec), "\": ", why)
//   // task spec "echo:xxxxxxxx... (2000005 bytes)": text of 2000000 ...
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace qfarm {

// How much of a quoted input an error keeps by default.
inline constexpr size_t kMaxQuotedBytes = 64;

// `text` itself when it has at most `max_bytes` bytes; otherwise its first
// `max_bytes` bytes (fewer when that would cut a UTF-8 character in two)
// followed by "... (N bytes)", N being text's whole size.
std::string Abbreviate(absl::string_view text,
                       size_t max_bytes = kMaxQuotedBytes);

}  // namespace qfarm
