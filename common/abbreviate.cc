#include "common/abbreviate.h"

#include "absl/strings/str_cat.h"

namespace qfarm {

std::string Abbreviate(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t keep = max_bytes;
  // A UTF-8 continuation byte (10xxxxxx) at the cut: back up to the start
  // of its character, which is then left out whole.
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) {
    --keep;
  }
  return absl::StrCat(text.substr(0, keep), "... (", text.size(), " bytes)");
}

}  // namespace qfarm
