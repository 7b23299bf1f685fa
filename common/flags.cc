#include "common/flags.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/task_spec.h"

namespace qfarm {

void FlagSet::String(std::string name, std::string* value, std::string help) {
  flags_.push_back({.name = std::move(name),
                    .help = std::move(help),
                    .default_text = value->empty() ? "" : *value,
                    .parse = [value](absl::string_view text) {
                      *value = std::string(text);
                      return absl::OkStatus();
                    }});
}

void FlagSet::Int(std::string name, int64_t* value, std::string help,
                  int64_t min, int64_t max) {
  const std::string flag_name = name;
  flags_.push_back(
      {.name = std::move(name),
       .help = std::move(help),
       .default_text = absl::StrCat(*value),
       .parse = [value, min, max, flag_name](absl::string_view text) {
         int64_t parsed = 0;
         if (!absl::SimpleAtoi(text, &parsed)) {
           return absl::InvalidArgumentError(absl::StrCat(
               "--", flag_name, "=", text, ": not a whole number"));
         }
         if (parsed < min || parsed > max) {
           return absl::InvalidArgumentError(
               absl::StrCat("--", flag_name, "=", text, ": must be within ",
                            min, "..", max));
         }
         *value = parsed;
         return absl::OkStatus();
       }});
}

void FlagSet::Bool(std::string name, bool* value, std::string help) {
  const std::string flag_name = name;
  flags_.push_back(
      {.name = std::move(name),
       .help = std::move(help),
       .default_text = *value ? "true" : "false",
       .is_bool = true,
       .parse = [value, flag_name](absl::string_view text) {
         if (text == "true" || text == "1" || text == "yes") {
           *value = true;
         } else if (text == "false" || text == "0" || text == "no") {
           *value = false;
         } else {
           return absl::InvalidArgumentError(absl::StrCat(
               "--", flag_name, "=", text, ": expected true or false"));
         }
         return absl::OkStatus();
       }});
}

void FlagSet::Duration(std::string name, absl::Duration* value,
                       std::string help) {
  const std::string flag_name = name;
  flags_.push_back({.name = std::move(name),
                    .help = std::move(help),
                    .default_text = absl::FormatDuration(*value),
                    .parse = [value, flag_name](absl::string_view text) {
                      absl::StatusOr<absl::Duration> d =
                          ParseDurationFlag(text);
                      if (!d.ok()) {
                        return absl::InvalidArgumentError(absl::StrCat(
                            "--", flag_name, ": ", d.status().message()));
                      }
                      *value = *d;
                      return absl::OkStatus();
                    }});
}

FlagSet::Flag* FlagSet::Find(absl::string_view name) {
  for (Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

bool FlagSet::WasSet(absl::string_view name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return flag.set;
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(int argc, char** argv) {
  return Parse(
      std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(
    const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      help_requested_ = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-' || arg == "-") {
      positional.emplace_back(arg);
      continue;
    }
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    absl::string_view name = body;
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr && !has_value && absl::StartsWith(name, "no")) {
      Flag* negated = Find(name.substr(2));
      if (negated != nullptr && negated->is_bool) {
        RETURN_IF_ERROR(negated->parse("false"));
        negated->set = true;
        continue;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!has_value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
    }
    RETURN_IF_ERROR(flag->parse(value));
    flag->set = true;
  }
  return positional;
}

std::string FlagSet::Help() const {
  std::string out = absl::StrCat(usage_, "\n\nFlags:\n");
  for (const Flag& flag : flags_) {
    absl::StrAppend(&out, "  --", flag.name);
    if (!flag.is_bool) absl::StrAppend(&out, "=VALUE");
    absl::StrAppend(&out, "\n      ", flag.help);
    if (!flag.default_text.empty()) {
      absl::StrAppend(&out, " (default: ", flag.default_text, ")");
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help\n      show this help\n");
  return out;
}

}  // namespace qfarm
