// The journal's files before and as SQLite opens them: creating an empty
// journal whole, and the checks that tell a crash's trace from damage
// (see "Crash versus corruption" in journal.h). Part of qfarm_journal; not
// for other targets. Thread-compatible.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qfarm::coordinator::journal_files {

// Creates an empty journal at `path` (in `dir`), whole or not at all: it is
// built beside it and renamed into place, so a journal.db that exists
// always has its header and schema, and a missing or short one is damage.
absl::Status CreateJournal(const std::string& path, const std::string& dir);

// What the WAL file holds.
struct WalScan {
  // Frames up to the last valid commit: what SQLite will use.
  uint64_t committed_frames = 0;
  // Frames of this WAL generation after that: an incomplete last
  // transaction, which SQLite will ignore.
  uint64_t dropped_frames = 0;
};

// Reads the WAL at `wal` as SQLite's recovery would (see "WAL File Format"
// in https://sqlite.org/fileformat2.html). A missing or short file holds
// nothing. DATA_LOSS for a header that is not valid, or for committed
// transactions after a broken frame (which SQLite would silently drop).
absl::StatusOr<WalScan> ScanWal(const std::string& wal);

// Checks journal.db's first 100 bytes, and its length against the page
// count they record (skipped when the WAL holds committed frames: a
// checkpoint interrupted by a crash may leave the file short, and SQLite
// redoes it). DATA_LOSS naming the damage.
absl::Status CheckDatabaseHeader(const std::string& path, bool wal_committed);

// SQLite's integrity_check (quick_check when `full` is false): DATA_LOSS
// with what it reports.
absl::Status CheckIntegrity(sqlite3* db, const std::string& path, bool full);

// That the open database is a qfarm journal of a schema this code reads;
// returns the schema version (1 is migrated by the caller).
// FAILED_PRECONDITION for another application's file or a newer schema,
// DATA_LOSS for damaged header rows.
absl::StatusOr<int> CheckIdentity(sqlite3* db, const std::string& path);

// Rewrites a journal of schema 1 as schema 2 (journal_format.h): its
// results rows split by job, table released added, then the file rebuilt
// with auto_vacuum (VACUUM: it takes as long as a copy of the file, once).
// Atomic up to the VACUUM, which SQLite makes atomic itself.
absl::Status MigrateFrom1(sqlite3* db, const std::string& path);

}  // namespace qfarm::coordinator::journal_files
