#include "common/flags.h"

#include <algorithm>
#include <iostream>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/abbreviate.h"
#include "common/logging.h"
#include "common/process.h"

namespace qfarm {
namespace {

std::string Dashed(absl::string_view name) {
  return absl::StrReplaceAll(name, {{"_", "-"}});
}

absl::CommandLineFlag& Handle(const FlagSpec& spec) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(spec.name);
  QFARM_CHECK(flag != nullptr) << "flag " << spec.name << " is not defined";
  return *flag;
}

// What a value of the flag's type looks like, for an error.
absl::string_view Expected(const absl::CommandLineFlag& flag) {
  if (flag.IsOfType<bool>()) return "expected true or false";
  if (flag.IsOfType<int64_t>()) return "not a whole number";
  if (flag.IsOfType<absl::Duration>()) {
    return "expected a duration with a unit, for example 250ms, 1s, 2m";
  }
  return "not a valid value";
}

}  // namespace

FlagSpec Flag(const absl::Flag<int64_t>& flag, int64_t min, int64_t max,
              std::string help) {
  return {std::string(absl::GetFlagReflectionHandle(flag).Name()),
          std::make_pair(min, max), std::move(help)};
}

bool ParsedArgs::Given(absl::string_view dashed_name) const {
  return std::find(given.begin(), given.end(), dashed_name) != given.end();
}

CommandLine::CommandLine(std::string usage, std::vector<FlagSpec> flags)
    : usage_(std::move(usage)), flags_(std::move(flags)) {}

const FlagSpec* CommandLine::Find(absl::string_view dashed_name) const {
  // Only the dashed spelling: `--max_queued` is unknown.
  if (absl::StrContains(dashed_name, '_')) return nullptr;
  for (const FlagSpec& spec : flags_) {
    if (Dashed(spec.name) == dashed_name) return &spec;
  }
  return nullptr;
}

absl::Status CommandLine::Set(const FlagSpec& spec,
                              absl::string_view dashed_name,
                              absl::string_view value) const {
  absl::CommandLineFlag& flag = Handle(spec);
  std::string error;
  if (!flag.ParseFrom(value, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", dashed_name, "=", Abbreviate(value), ": ", Expected(flag)));
  }
  if (spec.range) {
    const int64_t parsed = *flag.TryGet<int64_t>();
    if (parsed < spec.range->first || parsed > spec.range->second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", dashed_name, "=", Abbreviate(value), ": must be within ",
          spec.range->first, "..", spec.range->second));
    }
  }
  if (flag.IsOfType<absl::Duration>() &&
      *flag.TryGet<absl::Duration>() < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", dashed_name, "=", Abbreviate(value), ": must not be negative"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ParsedArgs> CommandLine::Parse(int argc, char** argv) const {
  return Parse(
      std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
}

absl::StatusOr<ParsedArgs> CommandLine::Parse(
    const std::vector<std::string>& args) const {
  for (const FlagSpec& spec : flags_) {
    absl::CommandLineFlag& flag = Handle(spec);
    std::string error;
    QFARM_CHECK(flag.ParseFrom(flag.DefaultValue(), &error)) << error;
  }
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      parsed.positional.insert(parsed.positional.end(), args.begin() + i + 1,
                               args.end());
      break;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      parsed.help = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      parsed.positional.emplace_back(arg);
      continue;
    }
    absl::string_view name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<absl::string_view> value;
    if (size_t eq = name.find('='); eq != absl::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const FlagSpec* spec = Find(name);
    if (spec == nullptr && !value && absl::ConsumePrefix(&name, "no")) {
      spec = Find(name);
      if (spec != nullptr && Handle(*spec).IsOfType<bool>()) value = "false";
      if (!value) spec = nullptr;
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown flag ", Abbreviate(args[i].substr(0, args[i].find('='))),
          " (see --help)"));
    }
    if (!value) {
      if (Handle(*spec).IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (absl::Status set = Set(*spec, name, *value); !set.ok()) return set;
    parsed.given.push_back(std::string(name));
  }
  return parsed;
}

std::optional<int> CommandLine::ParseFlagsOnly(
    int argc, char** argv, absl::string_view program) const {
  absl::StatusOr<ParsedArgs> args = Parse(argc, argv);
  if (!args.ok()) {
    std::cerr << program << ": " << args.status().message() << "\n";
    return kExitUsage;
  }
  if (args->help) {
    std::cout << Help();
    return kExitOk;
  }
  if (!args->positional.empty()) {
    std::cerr << program << ": unexpected argument \""
              << Abbreviate(args->positional[0]) << "\" (see --help)\n";
    return kExitUsage;
  }
  return std::nullopt;
}

std::string CommandLine::Help() const {
  std::string out = absl::StrCat(usage_, "\n\nFlags:\n");
  for (const FlagSpec& spec : flags_) {
    const absl::CommandLineFlag& flag = Handle(spec);
    absl::StrAppend(&out, "  --", Dashed(spec.name));
    if (!flag.IsOfType<bool>()) absl::StrAppend(&out, "=VALUE");
    absl::StrAppend(&out, "\n      ",
                    spec.help.empty() ? flag.Help() : spec.help);
    if (const std::string value = flag.DefaultValue(); !value.empty()) {
      absl::StrAppend(&out, " (default: ", value, ")");
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help\n      show this help\n");
  return out;
}

}  // namespace qfarm
