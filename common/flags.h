// Command lines of qfarm's binaries, on Abseil's flags. Flags are defined
// with ABSL_FLAG (names with underscores, as C++ needs) and given with
// dashes: `--max-queued=5` or `--max-queued 5`, anywhere among the
// positional arguments (as git and kubectl users expect); `--` ends the
// flags; `--help`, `-help` or `-h` asks for help; a bool flag also takes
// `--name` and `--noname`. Abseil parses and holds each value
// (CommandLineFlag::ParseFrom); this layer only splits the arguments and
// reports errors, because absl::ParseCommandLine exits the process (status
// 1) on a bad flag and knows only underscore names.
//
//   ABSL_FLAG(int64_t, max_queued, 1000, "most tasks waiting");
//   ...
//   const qfarm::CommandLine command_line(
//       "usage: qfarm-coordinator [flags]",
//       {qfarm::Flag(FLAGS_max_queued, 1, 1 << 20)});
//   absl::StatusOr<qfarm::ParsedArgs> args = command_line.Parse(argc, argv);
//   if (!args.ok()) { std::cerr << args.status().message(); return 2; }
//   if (args->help) { std::cout << command_line.Help(); return 0; }
//   int64_t max_queued = absl::GetFlag(FLAGS_max_queued);
//
// (or `if (auto exit = command_line.ParseFlagsOnly(argc, argv, "NAME"))
// return *exit;` in a main() without positional arguments).
//
// Parse() sets the process's flags, first returning its own flags to their
// defaults, so each parse sees only its arguments (a library entry point
// may parse once per call). Thread-compatible: one parse at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qfarm {

// One flag a command line accepts: its Abseil name, for int64_t flags the
// values allowed, and the help this command line shows for it (empty: the
// flag's own).
struct FlagSpec {
  std::string name;
  std::optional<std::pair<int64_t, int64_t>> range;
  std::string help = {};
};

template <typename T>
FlagSpec Flag(const absl::Flag<T>& flag, std::string help = "") {
  return {std::string(absl::GetFlagReflectionHandle(flag).Name()), std::nullopt,
          std::move(help)};
}
// An int64_t flag that must lie within [min, max].
FlagSpec Flag(const absl::Flag<int64_t>& flag, int64_t min, int64_t max,
              std::string help = "");

struct ParsedArgs {
  // The arguments that are not flags, in order.
  std::vector<std::string> positional;
  bool help = false;
  // Dashed names of the flags given, in order, repeats included.
  std::vector<std::string> given;

  bool Given(absl::string_view dashed_name) const;
};

class CommandLine {
 public:
  // `flags` in the order Help() lists them.
  CommandLine(std::string usage, std::vector<FlagSpec> flags);

  // `args` without the program name. INVALID_ARGUMENT naming the flag (with
  // dashes) for an unknown flag, a missing value, a value Abseil cannot
  // parse, an int64_t out of its range and a negative absl::Duration; the
  // flags' values are then unspecified.
  absl::StatusOr<ParsedArgs> Parse(const std::vector<std::string>& args) const;
  absl::StatusOr<ParsedArgs> Parse(int argc, char** argv) const;

  // For a main() that takes no positional arguments: parses argv; prints
  // Help() to stdout and returns 0 on --help; prints "PROGRAM: MESSAGE" to
  // stderr and returns 2 on an error or a positional argument; otherwise
  // returns nullopt and main() goes on.
  std::optional<int> ParseFlagsOnly(int argc, char** argv,
                                    absl::string_view program) const;

  // The usage text, then each flag with its help and default.
  std::string Help() const;

 private:
  const FlagSpec* Find(absl::string_view dashed_name) const;
  absl::Status Set(const FlagSpec& spec, absl::string_view dashed_name,
                   absl::string_view value) const;

  std::string usage_;
  std::vector<FlagSpec> flags_;
};

}  // namespace qfarm
