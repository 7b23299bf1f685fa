// For tests: a small XML well-formedness check, enough for the SVG that
// FormatSvg() writes. It checks one root element, matching start and end
// tags, quoted attributes without duplicates, and entity references (the
// five predefined ones and numeric ones); an XML declaration, comments and
// processing instructions are allowed. No DTDs, no CDATA.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace qfarm::bench {

inline absl::Status CheckWellFormedXml(absl::string_view text) {
  size_t pos = 0;
  const auto error = [&pos](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("XML: ", why, " at offset ", pos));
  };
  const auto is_name_char = [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
           c == ':' || c == '-' || c == '.';
  };
  const auto check_text = [&](absl::string_view chunk) -> absl::Status {
    for (size_t i = 0; i < chunk.size(); ++i) {
      if (chunk[i] == '<') return error("'<' in text or an attribute");
      if (chunk[i] != '&') continue;
      const size_t semi = chunk.find(';', i);
      if (semi == absl::string_view::npos) return error("unterminated entity");
      const absl::string_view name = chunk.substr(i + 1, semi - i - 1);
      const bool numeric =
          name.size() > 1 && name[0] == '#' &&
          (name.substr(1).find_first_not_of("0123456789") ==
               absl::string_view::npos ||
           (name[1] == 'x' && name.size() > 2 &&
            name.substr(2).find_first_not_of("0123456789abcdefABCDEF") ==
                absl::string_view::npos));
      if (!numeric && name != "amp" && name != "lt" && name != "gt" &&
          name != "quot" && name != "apos") {
        return error(absl::StrCat("unknown entity &", name, ";"));
      }
      i = semi;
    }
    return absl::OkStatus();
  };

  std::vector<std::string> open;
  int roots = 0;
  while (pos < text.size()) {
    const size_t lt = text.find('<', pos);
    const absl::string_view chunk =
        text.substr(pos, lt == absl::string_view::npos ? absl::string_view::npos
                                                       : lt - pos);
    if (open.empty()) {
      for (char c : chunk) {
        if (!absl::ascii_isspace(static_cast<unsigned char>(c))) {
          return error("text outside the root element");
        }
      }
    } else if (absl::Status ok = check_text(chunk); !ok.ok()) {
      return ok;
    }
    if (lt == absl::string_view::npos) break;
    pos = lt;
    if (text.substr(pos, 4) == "<!--") {
      const size_t end = text.find("-->", pos + 4);
      if (end == absl::string_view::npos) return error("unterminated comment");
      pos = end + 3;
      continue;
    }
    if (text.substr(pos, 2) == "<?") {
      const size_t end = text.find("?>", pos + 2);
      if (end == absl::string_view::npos) {
        return error("unterminated processing instruction");
      }
      pos = end + 2;
      continue;
    }
    if (text.substr(pos, 2) == "<!") return error("DTD or CDATA");
    const bool closing = text.substr(pos, 2) == "</";
    pos += closing ? 2 : 1;
    const size_t name_start = pos;
    while (pos < text.size() && is_name_char(text[pos])) ++pos;
    if (pos == name_start) return error("a tag without a name");
    const std::string name(text.substr(name_start, pos - name_start));
    if (closing) {
      while (pos < text.size() &&
             absl::ascii_isspace(static_cast<unsigned char>(text[pos]))) {
        ++pos;
      }
      if (pos >= text.size() || text[pos] != '>') return error("bad end tag");
      ++pos;
      if (open.empty() || open.back() != name) {
        return error(absl::StrCat("</", name, "> does not close the open tag"));
      }
      open.pop_back();
      continue;
    }
    std::set<std::string> attributes;
    bool self_closing = false;
    while (true) {
      const size_t before = pos;
      while (pos < text.size() &&
             absl::ascii_isspace(static_cast<unsigned char>(text[pos]))) {
        ++pos;
      }
      if (pos >= text.size()) return error("unterminated tag");
      if (text[pos] == '>') {
        ++pos;
        break;
      }
      if (text.substr(pos, 2) == "/>") {
        pos += 2;
        self_closing = true;
        break;
      }
      if (pos == before) return error("no space before an attribute");
      const size_t attr_start = pos;
      while (pos < text.size() && is_name_char(text[pos])) ++pos;
      if (pos == attr_start) return error("bad attribute name");
      const std::string attr(text.substr(attr_start, pos - attr_start));
      if (!attributes.insert(attr).second) {
        return error(absl::StrCat("duplicate attribute ", attr));
      }
      if (pos >= text.size() || text[pos] != '=') return error("expected =");
      ++pos;
      if (pos >= text.size() || (text[pos] != '"' && text[pos] != '\'')) {
        return error("unquoted attribute value");
      }
      const char quote = text[pos++];
      const size_t end = text.find(quote, pos);
      if (end == absl::string_view::npos) return error("unterminated value");
      if (absl::Status ok = check_text(text.substr(pos, end - pos)); !ok.ok()) {
        return ok;
      }
      pos = end + 1;
    }
    if (open.empty() && ++roots > 1) return error("a second root element");
    if (!self_closing) open.push_back(name);
  }
  if (!open.empty())
    return error(absl::StrCat("<", open.back(), "> not closed"));
  if (roots != 1) return error("no root element");
  return absl::OkStatus();
}

}  // namespace qfarm::bench
