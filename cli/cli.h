// The `qfarm` command line: parses arguments, runs the command, prints
// results. Returns the process exit code: 0 when every task succeeded, 1
// when any failed or the coordinator could not be reached, 2 for usage
// errors.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "qfarm/kinds.h"

namespace qfarm::client {

class Interrupt;

struct CliStreams {
  std::istream* in;   // Specs for --from=-.
  std::ostream* out;  // Results.
  std::ostream* err;  // Errors and the closing summary.
  // Ctrl-C: map cancels its job, watch stops watching. May be null.
  Interrupt* interrupt = nullptr;
  // `err` is a terminal: map and watch draw a progress line on it
  // (--progress=auto).
  bool err_is_terminal = false;
  // `out` is a terminal: results are written with the progress line erased
  // first, so they do not land on it.
  bool out_is_terminal = false;
  // The width of the terminal `err` is, when known; 0 otherwise.
  size_t err_columns = 0;
};

// Runs `qfarm bench` with the command's arguments (flags included, the word
// "bench" left out); returns the exit code. The bench lives in its own
// library (bench/), which depends on this one, so main() passes it in.
using BenchCommand = std::function<int(const std::vector<std::string>& args,
                                       const CliStreams& io)>;

// `args` excludes the program name. The coordinator address defaults to
// `default_coordinator` ($QFARM_COORDINATOR or 127.0.0.1:50051 in main).
// Without `bench`, `qfarm bench` is an unknown command. `map --local` runs
// `kinds` (null: the built-in kinds). Parses into the process's Abseil
// flags (defined in cli.cc and common/common_flags.cc): one call at a time
// per process.
int RunCli(const std::vector<std::string>& args,
           const std::string& default_coordinator, const CliStreams& io,
           const BenchCommand& bench = nullptr, const Kinds* kinds = nullptr);

// The whole `qfarm` program around RunCli(): call first thing in main(),
// before any thread starts. Ctrl-C (SIGINT, SIGTERM): the first one is
// handed to the running command (map cancels its job and prints what
// finished; watch stops watching); a second one, or one during a command
// that does not handle it, exits at once with 130. Returns the exit code.
int RunCliMain(const std::vector<std::string>& args, const BenchCommand& bench,
               const Kinds* kinds = nullptr);

}  // namespace qfarm::client
