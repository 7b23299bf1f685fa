// qfarm-coordinator in the foreground: checks what its command line asked,
// starts a CoordinatorServer, prints where it listens, and shuts it down on
// SIGINT or SIGTERM.
//
//   CoordinatorCommand command;            // filled from flags by main()
//   return RunCoordinator(command);
#pragma once

#include <string>

#include "coordinator/coordinator_server.h"

namespace qfarm::coordinator {

// What the command line asked for, before it is checked.
struct CoordinatorCommand {
  CoordinatorCommand() { options.scheduler.retain_finished = absl::Hours(1); }
  // Everything but the journal's place and the tokens, which come below.
  CoordinatorOptions options;
  // SchedulerOptions::retain_finished_bytes as written (ParseByteSize()).
  std::string retain_finished_bytes = "1GiB";
  // Where the journal lives, unless `ephemeral`.
  std::string data_dir = "./qfarm-data";
  bool ephemeral = false;
  // "full" or "normal" (JournalSync).
  std::string journal_sync = "full";
  // The kinds tasks may have, comma-separated; empty: any valid kind name.
  std::string kinds;
  // Files holding the tokens; empty: none required.
  std::string client_token_file;
  std::string worker_token_file;
};

// Call first thing in main(), before any thread starts. Prints
// "qfarm-coordinator listening on HOST:PORT" as the first line on stdout
// (then "qfarm-coordinator metrics on HOST:PORT" with a metrics endpoint,
// and "qfarm-coordinator health on HOST:PORT" with a health-only port).
// Returns the exit code: 0 after a clean stop, 1 when the coordinator could
// not start or its journal failed, 2 for a bad command line.
int RunCoordinator(CoordinatorCommand command);

}  // namespace qfarm::coordinator
