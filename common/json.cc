#include "common/json.h"

#include "common/logging.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/wrappers.pb.h"

namespace qfarm {
namespace {

constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool Continuation(unsigned char c, unsigned char low = 0x80,
                  unsigned char high = 0xBF) {
  return c >= low && c <= high;
}

// Length of the well-formed sequence at text[i], or 0.
size_t SequenceLength(absl::string_view text, size_t i) {
  const auto at = [&text, i](size_t k) -> unsigned char {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0;
  };
  const unsigned char c = at(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return Continuation(at(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char low = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char high = c == 0xED ? 0x9F : 0xBF;
    return Continuation(at(1), low, high) && Continuation(at(2)) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char low = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char high = c == 0xF4 ? 0x8F : 0xBF;
    return Continuation(at(1), low, high) && Continuation(at(2)) &&
                   Continuation(at(3))
               ? 4
               : 0;
  }
  return 0;
}

// Whether protobuf's printer writes `text` unchanged between quotes:
// printable ASCII but the characters it escapes.
bool PrintsAsIs(absl::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7E || c == '"' || c == '\\' || c == '<' || c == '>') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string ValidUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = SequenceLength(text, i);
    if (n == 0) {
      out.append(kReplacement.data(), kReplacement.size());
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  return out;
}

std::string JsonString(absl::string_view text) {
  // Most of qfarm's strings (states, ids, short payloads): the printer
  // would copy them, so they skip it.
  if (PrintsAsIs(text)) {
    std::string out;
    out.reserve(text.size() + 2);
    out.push_back('"');
    out.append(text.data(), text.size());
    out.push_back('"');
    return out;
  }
  google::protobuf::StringValue value;
  value.set_value(ValidUtf8(text));
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(value, &out);
  QFARM_CHECK(status.ok()) << "protobuf's JSON printer failed on a string: "
                           << status.ToString();
  return out;
}

}  // namespace qfarm
