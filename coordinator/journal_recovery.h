// Reading a journal back after a restart: every row of table log, checked
// (CRC-32, parse, consistency), into the jobs the scheduler restores. Part
// of qfarm_journal; not for other targets. Thread-compatible.
#pragma once

#include <sqlite3.h>

#include <string>

#include "absl/status/statusor.h"
#include "coordinator/scheduler.h"

namespace qfarm::coordinator::journal_recovery {

// Every job of the open journal `db` (at `path`, for messages) by
// increasing id, with its final results in journal order; see
// Journal::Recover() for what is dropped and what is DATA_LOSS.
absl::StatusOr<RecoveredState> ReadJournal(sqlite3* db,
                                           const std::string& path);

}  // namespace qfarm::coordinator::journal_recovery
