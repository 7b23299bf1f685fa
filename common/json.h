// JSON string literals for qfarm's JSON outputs (`qfarm map --output=json`,
// `qfarm bench --output=json`), written by protobuf's JSON printer
// (google/protobuf/util/json_util.h), so every output escapes alike.
//
//   std::string line = absl::StrCat("{\"value\":", JsonString(value), "}");
//
// Thread-safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace qfarm {

// `text` as a JSON string, quotes included, exactly as protobuf's JSON
// printer writes a string field holding ValidUtf8(text). Always valid JSON
// and valid UTF-8.
std::string JsonString(absl::string_view text);

// `text` with every byte that does not belong to a well-formed UTF-8
// sequence (Unicode 15, table 3-7: no overlong forms, no surrogates,
// nothing past U+10FFFF) replaced by U+FFFD. Protobuf refuses (and its JSON
// printer drops) such bytes in string fields.
std::string ValidUtf8(absl::string_view text);

}  // namespace qfarm
