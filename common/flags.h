// Command-line flags for qfarm's binaries: `--name=value` or `--name value`,
// anywhere among the positional arguments (as git and kubectl users expect);
// `--` ends the flags; `--help` / `-h` asks for help. Names use dashes.
//
//   std::string address = "127.0.0.1:50051";
//   FlagSet flags("qfarm-worker --coordinator=HOST:PORT ...");
//   flags.String("coordinator", &address, "HOST:PORT of the coordinator");
//   absl::StatusOr<std::vector<std::string>> args = flags.Parse(argc, argv);
//   if (!args.ok()) { std::cerr << args.status().message(); return 2; }
//   if (flags.help_requested()) { std::cout << flags.Help(); return 0; }
//
// Thread-compatible. Values are written only by Parse().
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace qfarm {

class FlagSet {
 public:
  explicit FlagSet(std::string usage) : usage_(std::move(usage)) {}

  void String(std::string name, std::string* value, std::string help);
  void Int(std::string name, int64_t* value, std::string help,
           int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  // `--name`, `--name=true|false`.
  void Bool(std::string name, bool* value, std::string help);
  // A duration with a unit: 250ms, 1s, 2m.
  void Duration(std::string name, absl::Duration* value, std::string help);

  // Parses arguments (without the program name). Returns the positional
  // ones in order. INVALID_ARGUMENT naming the flag for unknown flags, bad
  // values and missing values.
  absl::StatusOr<std::vector<std::string>> Parse(
      const std::vector<std::string>& args);
  absl::StatusOr<std::vector<std::string>> Parse(int argc, char** argv);

  bool help_requested() const { return help_requested_; }
  // Usage line, then one paragraph per flag with its default.
  std::string Help() const;
  // Whether `name` was given on the command line.
  bool WasSet(absl::string_view name) const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool is_bool = false;
    bool set = false;
    std::function<absl::Status(absl::string_view)> parse;
  };
  Flag* Find(absl::string_view name);

  std::string usage_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
};

}  // namespace qfarm
