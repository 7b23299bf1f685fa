#include "coordinator/journal_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errno_text.h"
#include "common/status_macros.h"

namespace qfarm::coordinator::journal_io {

absl::Status SqliteError(sqlite3* db, int rc, const std::string& path,
                         absl::string_view what) {
  const std::string message =
      absl::StrCat(path, ": ", what, ": ",
                   db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                   " (SQLite code ", rc, ")");
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return absl::FailedPreconditionError(message);
    case SQLITE_IOERR:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status Exec(sqlite3* db, const std::string& path, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, path, sql);
  return absl::OkStatus();
}

absl::StatusOr<Stmt> Prepare(sqlite3* db, const std::string& path,
                             const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, path, sql);
  return Stmt(stmt);
}

absl::StatusOr<std::vector<std::string>> Query(sqlite3* db,
                                               const std::string& path,
                                               const char* sql) {
  ASSIGN_OR_RETURN(Stmt stmt, Prepare(db, path, sql));
  std::vector<std::string> rows;
  while (true) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) return rows;
    if (rc != SQLITE_ROW) return SqliteError(db, rc, path, sql);
    const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
    rows.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text)
                                      : "");
  }
}

absl::Status PosixError(absl::string_view what, const std::string& path,
                        int err) {
  return absl::FailedPreconditionError(
      absl::StrCat("cannot ", what, " ", path, ": ", ErrnoText(err)));
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return st.st_size;
}

absl::StatusOr<size_t> ReadAt(int fd, const std::string& path, int64_t offset,
                              size_t size, unsigned char* out) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n =
        pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("read", path, errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

absl::Status Fsync(const std::string& path, bool directory) {
  const int fd = open(
      path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return PosixError("open", path, errno);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return PosixError("fsync", path, err);
  return absl::OkStatus();
}

uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint32_t Le32(const unsigned char* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) |
         (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}

}  // namespace qfarm::coordinator::journal_io
