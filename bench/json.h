// A small JSON reader for what bench/seed_methods.py prints: objects,
// arrays, strings (with \uXXXX escapes of the Basic Multilingual Plane),
// numbers, true, false, null.
//
//   absl::StatusOr<JsonValue> doc = ParseJson(text);
//   double wall = doc->Get("wall_s").number;
//
// Thread-compatible.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qfarm::bench {

struct JsonMember;

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  // In order; std::pair of an incomplete type is refused by clang.
  std::vector<JsonMember> object;

  // The member `key` of an object; a null value when absent.
  const JsonValue& Get(absl::string_view key) const;
};

struct JsonMember {
  std::string name;
  JsonValue value;
};

// INVALID_ARGUMENT with the offset of the first error.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

}  // namespace qfarm::bench
