// SQLite and file helpers of the journal: statuses whose codes say what the
// caller should do, statements that finalize themselves, whole reads and
// fsyncs. Part of qfarm_journal; not for other targets. Thread-compatible
// (a connection is used by one thread at a time).
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qfarm::coordinator::journal_io {

struct StmtDeleter {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

// "PATH: WHAT: SQLite's message (SQLite code RC)", as DATA_LOSS (corrupt,
// not a database), RESOURCE_EXHAUSTED (disk full), FAILED_PRECONDITION
// (busy, locked, cannot open, permissions), UNAVAILABLE (I/O error) or
// INTERNAL.
absl::Status SqliteError(sqlite3* db, int rc, const std::string& path,
                         absl::string_view what);
absl::Status Exec(sqlite3* db, const std::string& path, const char* sql);
absl::StatusOr<Stmt> Prepare(sqlite3* db, const std::string& path,
                             const char* sql);
// The first column of every row, as text.
absl::StatusOr<std::vector<std::string>> Query(sqlite3* db,
                                               const std::string& path,
                                               const char* sql);

// FAILED_PRECONDITION "cannot WHAT PATH: strerror(err)".
absl::Status PosixError(absl::string_view what, const std::string& path,
                        int err);
// -1 when the file does not exist.
int64_t FileSize(const std::string& path);
// Reads up to `size` bytes at `offset`; returns how many were read (fewer
// only at the end of the file).
absl::StatusOr<size_t> ReadAt(int fd, const std::string& path, int64_t offset,
                              size_t size, unsigned char* out);
absl::Status Fsync(const std::string& path, bool directory);

// Big- and little-endian 32-bit words.
uint32_t Be32(const unsigned char* p);
uint32_t Le32(const unsigned char* p);

}  // namespace qfarm::coordinator::journal_io
