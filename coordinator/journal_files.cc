#include "coordinator/journal_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "coordinator/journal_format.h"
#include "coordinator/journal_io.h"
#include "qfarm/v1/farm.pb.h"

namespace qfarm::coordinator::journal_files {
namespace {

using journal_io::Be32;
using journal_io::Le32;
using journal_io::PosixError;
using journal_io::Query;
using journal_io::ReadAt;
using journal_io::SqliteError;

// Adds `size` bytes (a multiple of 8) to SQLite's WAL checksum.
void WalChecksum(bool big_endian, const unsigned char* data, size_t size,
                 uint32_t& s1, uint32_t& s2) {
  for (size_t i = 0; i < size; i += 8) {
    s1 += (big_endian ? Be32(data + i) : Le32(data + i)) + s2;
    s2 += (big_endian ? Be32(data + i + 4) : Le32(data + i + 4)) + s1;
  }
}

constexpr size_t kWalHeaderSize = 32;

// A WAL header that holds: its byte order, page size, salts and checksum.
struct WalHeader {
  unsigned char bytes[kWalHeaderSize];
  bool big_endian = false;
  uint32_t page_size = 0;
  uint32_t s1 = 0;
  uint32_t s2 = 0;

  const unsigned char* salts() const { return bytes + 16; }
};

// DATA_LOSS unless `header` is a valid WAL header.
absl::StatusOr<WalHeader> CheckWalHeader(const std::string& wal,
                                         const unsigned char* bytes) {
  WalHeader header;
  std::memcpy(header.bytes, bytes, kWalHeaderSize);
  const uint32_t magic = Be32(bytes);
  if (magic != 0x377f0682 && magic != 0x377f0683) {
    return absl::DataLossError(absl::StrCat(
        wal, " is damaged: its header is not a WAL header (magic 0x",
        absl::Hex(magic, absl::kZeroPad8),
        "); SQLite would silently ignore the transactions in it"));
  }
  header.big_endian = (magic & 1) != 0;
  header.page_size = Be32(bytes + 8);
  WalChecksum(header.big_endian, bytes, 24, header.s1, header.s2);
  if (header.s1 != Be32(bytes + 24) || header.s2 != Be32(bytes + 28)) {
    return absl::DataLossError(
        absl::StrCat(wal,
                     " is damaged: its header fails its checksum; SQLite would "
                     "silently ignore the transactions in it"));
  }
  const uint32_t page_size = header.page_size;
  if (Be32(bytes + 4) != 3007000 || page_size < 512 || page_size > 65536 ||
      (page_size & (page_size - 1)) != 0) {
    return absl::DataLossError(
        absl::StrCat(wal, " is damaged: its header records version ",
                     Be32(bytes + 4), " and page size ", page_size));
  }
  return header;
}

// Follows a WAL's frames as SQLite's recovery does. SQLite uses the frames
// up to the last commit frame whose cumulative checksum holds and ignores
// the rest without a word. With synchronous=FULL every commit is fsync'd
// before the next transaction starts, so a crash can only leave the last
// transaction incomplete; frames of this generation (matching salts) that
// form a complete transaction *after* a broken frame prove that committed
// data would be dropped.
class FrameChain {
 public:
  explicit FrameChain(const WalHeader& header)
      : header_(header), s1_(header.s1), s2_(header.s2) {}

  // Takes frame `i` (0-based); false once the frames after it cannot
  // change the outcome.
  bool Take(uint64_t i, const unsigned char* frame) {
    const bool current = std::memcmp(frame + 8, header_.salts(), 8) == 0;
    const bool commit = Be32(frame + 4) != 0;
    if (broken_at_ == 0) {
      if (Holds(frame, current)) {
        if (commit) {
          scan_.committed_frames = i + 1;
          scan_.dropped_frames = 0;
        } else {
          ++scan_.dropped_frames;
        }
        return true;
      }
      broken_at_ = i + 1;
    }
    if (!current) return true;
    ++scan_.dropped_frames;
    if (commit_after_break_) {
      current_after_commit_ = i + 1;
      return false;
    }
    if (commit) commit_after_break_ = true;
    return true;
  }

  // DATA_LOSS when a transaction was committed after a broken frame.
  absl::StatusOr<WalScan> Result(const std::string& wal,
                                 uint64_t frames) const {
    if (current_after_commit_ == 0) return scan_;
    return absl::DataLossError(absl::StrCat(
        wal, " is damaged: frame ", broken_at_, " of ", frames, " ", why_,
        ", yet transactions were committed after it (frame ",
        current_after_commit_,
        " follows a later commit); SQLite would silently drop them"));
  }

 private:
  // Whether the frame continues the checksum chain (and extends it).
  bool Holds(const unsigned char* frame, bool current) {
    if (!current || Be32(frame) == 0) {
      why_ = current ? "has page number 0" : "has the wrong salt";
      return false;
    }
    uint32_t f1 = s1_;
    uint32_t f2 = s2_;
    WalChecksum(header_.big_endian, frame, 8, f1, f2);
    WalChecksum(header_.big_endian, frame + 24, header_.page_size, f1, f2);
    if (f1 != Be32(frame + 16) || f2 != Be32(frame + 20)) {
      why_ = "fails its checksum";
      return false;
    }
    s1_ = f1;
    s2_ = f2;
    return true;
  }

  const WalHeader& header_;
  uint32_t s1_;
  uint32_t s2_;
  WalScan scan_;
  uint64_t broken_at_ = 0;  // 1-based; 0 while the chain holds.
  std::string why_;
  bool commit_after_break_ = false;
  uint64_t current_after_commit_ = 0;
};

}  // namespace

absl::Status CreateJournal(const std::string& path, const std::string& dir) {
  const std::string tmp = path + ".tmp";
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    std::remove((tmp + suffix).c_str());
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(tmp.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  absl::Cleanup close_db = [&db] { sqlite3_close_v2(db); };
  if (rc != SQLITE_OK) return SqliteError(db, rc, tmp, "create");
  using journal_io::Exec;
  RETURN_IF_ERROR(Exec(db, tmp, "PRAGMA page_size=4096"));
  // Before the first table: pages freed by deleting released jobs' rows go
  // back to the file system in steps (PRAGMA incremental_vacuum).
  RETURN_IF_ERROR(Exec(db, tmp, "PRAGMA auto_vacuum=INCREMENTAL"));
  RETURN_IF_ERROR(Exec(
      db, tmp,
      absl::StrCat("PRAGMA application_id=", journal_format::kApplicationId)
          .c_str()));
  RETURN_IF_ERROR(
      Exec(db, tmp,
           absl::StrCat("PRAGMA user_version=", journal_format::kSchemaVersion)
               .c_str()));
  RETURN_IF_ERROR(Exec(db, tmp, "BEGIN"));
  RETURN_IF_ERROR(Exec(db, tmp, journal_format::kSchema));
  RETURN_IF_ERROR(Exec(db, tmp, "COMMIT"));
  ASSIGN_OR_RETURN(std::vector<std::string> mode,
                   Query(db, tmp, "PRAGMA journal_mode=WAL"));
  if (mode != std::vector<std::string>{"wal"}) {
    return absl::FailedPreconditionError(
        absl::StrCat(tmp, ": cannot switch to WAL mode"));
  }
  std::move(close_db).Cancel();
  rc = sqlite3_close(db);  // Checkpoints and removes the WAL.
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(db, rc, tmp, "close");
    sqlite3_close_v2(db);
    return status;
  }
  RETURN_IF_ERROR(journal_io::Fsync(tmp, false));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return PosixError("rename to journal.db", tmp, errno);
  }
  return journal_io::Fsync(dir, true);
}

absl::StatusOr<WalScan> ScanWal(const std::string& wal) {
  const int fd = open(wal.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return WalScan();
    return PosixError("open", wal, errno);
  }
  absl::Cleanup close_fd = [fd] { close(fd); };
  const int64_t size = journal_io::FileSize(wal);
  // SQLite fsyncs the header before writing any frame: a short one held
  // no transaction.
  if (size < static_cast<int64_t>(kWalHeaderSize)) return WalScan();
  unsigned char bytes[kWalHeaderSize];
  ASSIGN_OR_RETURN(size_t got, ReadAt(fd, wal, 0, sizeof(bytes), bytes));
  if (got < sizeof(bytes)) return WalScan();
  ASSIGN_OR_RETURN(const WalHeader header, CheckWalHeader(wal, bytes));
  const size_t frame_size = 24 + size_t{header.page_size};
  const uint64_t frames =
      static_cast<uint64_t>(size - static_cast<int64_t>(kWalHeaderSize)) /
      frame_size;
  std::vector<unsigned char> frame(frame_size);
  FrameChain chain(header);
  for (uint64_t i = 0; i < frames; ++i) {
    ASSIGN_OR_RETURN(
        got,
        ReadAt(fd, wal, static_cast<int64_t>(kWalHeaderSize + i * frame_size),
               frame_size, frame.data()));
    if (got < frame_size || !chain.Take(i, frame.data())) break;
  }
  return chain.Result(wal, frames);
}

absl::Status CheckDatabaseHeader(const std::string& path, bool wal_committed) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError("open", path, errno);
  absl::Cleanup close_fd = [fd] { close(fd); };
  const int64_t size = journal_io::FileSize(path);
  unsigned char header[100];
  ASSIGN_OR_RETURN(size_t got, ReadAt(fd, path, 0, sizeof(header), header));
  if (got < sizeof(header)) {
    return absl::DataLossError(
        absl::StrCat(path, " is truncated: ", size,
                     " bytes, less than the 100-byte SQLite header"));
  }
  if (std::memcmp(header, "SQLite format 3", 16) != 0) {
    return absl::DataLossError(absl::StrCat(
        path, " is damaged: it does not start with the SQLite header"));
  }
  uint32_t page_size = (uint32_t{header[16]} << 8) | header[17];
  if (page_size == 1) page_size = 65536;
  if (page_size < 512 || (page_size & (page_size - 1)) != 0) {
    return absl::DataLossError(absl::StrCat(
        path, " is damaged: its header records a page size of ", page_size));
  }
  const uint32_t pages = Be32(header + 28);
  const bool pages_valid = pages != 0 && Be32(header + 24) == Be32(header + 92);
  const int64_t need = int64_t{pages} * page_size;
  if (!wal_committed && pages_valid && size < need) {
    return absl::DataLossError(absl::StrCat(
        path, " is truncated: ", size, " bytes, but its header records ", pages,
        " pages of ", page_size, " bytes (", need, " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status CheckIntegrity(sqlite3* db, const std::string& path, bool full) {
  const char* check =
      full ? "PRAGMA integrity_check(10)" : "PRAGMA quick_check(10)";
  ASSIGN_OR_RETURN(std::vector<std::string> problems, Query(db, path, check));
  if (problems == std::vector<std::string>{"ok"}) return absl::OkStatus();
  std::string report = absl::StrJoin(problems, "; ");
  std::replace(report.begin(), report.end(), '\n', ' ');
  return absl::DataLossError(absl::StrCat(
      path, " is damaged: ", full ? "integrity_check" : "quick_check",
      " reports: ", report));
}

absl::StatusOr<int> CheckIdentity(sqlite3* db, const std::string& path) {
  using journal_format::kApplicationId;
  using journal_format::kMagic;
  using journal_format::kSchemaVersion;
  ASSIGN_OR_RETURN(std::vector<std::string> app,
                   Query(db, path, "PRAGMA application_id"));
  if (app != std::vector<std::string>{absl::StrCat(kApplicationId)}) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a qfarm journal (application_id ",
                     app.empty() ? "none" : app[0], ")"));
  }
  auto meta = [&](const char* key) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(
        std::vector<std::string> rows,
        Query(db, path,
              absl::StrCat("SELECT value FROM meta WHERE key = '", key, "'")
                  .c_str()));
    if (rows.size() != 1) {
      return absl::DataLossError(absl::StrCat(
          path, " is damaged: its header row '", key, "' is missing"));
    }
    return rows[0];
  };
  ASSIGN_OR_RETURN(std::string magic, meta("magic"));
  if (magic != kMagic) {
    return absl::DataLossError(
        absl::StrCat(path, " is damaged: its header row says '", magic,
                     "', not '", kMagic, "'"));
  }
  ASSIGN_OR_RETURN(std::string version, meta("schema_version"));
  if (version == absl::StrCat(kSchemaVersion)) return kSchemaVersion;
  if (version == "1") return 1;
  if (version == "2") return 2;
  int parsed = 0;
  if (absl::SimpleAtoi(version, &parsed) && parsed > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " was written by a newer qfarm: schema version ",
                     version, ", this one reads version ", kSchemaVersion));
  }
  return absl::DataLossError(
      absl::StrCat(path, " is damaged: its header row records schema version '",
                   version, "'"));
}

namespace {

// MigrateFrom1() inside its transaction.
absl::Status MigrateRows(sqlite3* db, const std::string& path) {
  RETURN_IF_ERROR(journal_io::Exec(db, path, journal_format::kMigrateFrom1));
  // Schema 1 wrote a group's results as one row of job 0: each becomes its
  // job's row (in place when it holds one job, as nearly all do).
  struct Old {
    int64_t rowid;
    std::string data;
  };
  std::vector<Old> rows;
  {
    ASSIGN_OR_RETURN(
        journal_io::Stmt stmt,
        journal_io::Prepare(db, path,
                            "SELECT rowid, data, crc FROM log WHERE kind = 2 "
                            "AND job_id = 0 ORDER BY rowid"));
    while (true) {
      const int rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqliteError(db, rc, path, "migrate");
      const auto* data =
          static_cast<const char*>(sqlite3_column_blob(stmt.get(), 1));
      const int size = sqlite3_column_bytes(stmt.get(), 1);
      const int64_t rowid = sqlite3_column_int64(stmt.get(), 0);
      if (journal_format::RecordCrc(journal_format::kResults, 0, 0, data,
                                    static_cast<size_t>(size)) !=
          static_cast<uint32_t>(sqlite3_column_int64(stmt.get(), 2))) {
        return absl::DataLossError(absl::StrCat(
            path, ": row ", rowid, " (results) fails its checksum"));
      }
      rows.push_back({rowid, std::string(data, static_cast<size_t>(size))});
    }
  }
  ASSIGN_OR_RETURN(journal_io::Stmt update,
                   journal_io::Prepare(db, path,
                                       "UPDATE log SET job_id = ?1, data = ?2,"
                                       " crc = ?3 WHERE rowid = ?4"));
  ASSIGN_OR_RETURN(journal_io::Stmt insert,
                   journal_io::Prepare(db, path,
                                       "INSERT INTO log(kind, job_id, "
                                       "created_us, data, crc) VALUES(2, ?1, "
                                       "0, ?2, ?3)"));
  for (const Old& old : rows) {
    v1::ResultBatch batch;
    if (!batch.ParseFromString(old.data)) {
      return absl::DataLossError(absl::StrCat(
          path, ": row ", old.rowid, " (results): the results do not parse"));
    }
    std::vector<v1::TaskResult> results(
        std::make_move_iterator(batch.mutable_results()->begin()),
        std::make_move_iterator(batch.mutable_results()->end()));
    std::vector<std::pair<JobId, std::string>> by_job =
        journal_format::EncodeResultsByJob(std::move(results));
    for (size_t i = 0; i < by_job.size(); ++i) {
      const auto& [job, data] = by_job[i];
      const uint32_t crc = journal_format::RecordCrc(
          journal_format::kResults, job, 0, data.data(), data.size());
      sqlite3_stmt* stmt = i == 0 ? update.get() : insert.get();
      sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(job));
      sqlite3_bind_blob64(stmt, 2, data.data(), data.size(), SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 3, crc);
      if (i == 0) sqlite3_bind_int64(stmt, 4, old.rowid);
      const int rc = sqlite3_step(stmt);
      sqlite3_reset(stmt);
      if (rc != SQLITE_DONE) return SqliteError(db, rc, path, "migrate");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MigrateFrom1(sqlite3* db, const std::string& path) {
  using journal_io::Exec;
  RETURN_IF_ERROR(Exec(db, path, "BEGIN IMMEDIATE"));
  absl::Status status = MigrateRows(db, path);
  if (status.ok()) status = Exec(db, path, "COMMIT");
  if (!status.ok()) {
    if (sqlite3_get_autocommit(db) == 0) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return status;
  }
  // Rebuilt with auto_vacuum, so what is deleted later is given back.
  RETURN_IF_ERROR(Exec(db, path, "PRAGMA auto_vacuum=INCREMENTAL"));
  return Exec(db, path, "VACUUM");
}

}  // namespace qfarm::coordinator::journal_files
