#include "coordinator/journal.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "qfarm/v1/farm.pb.h"

namespace qfarm::coordinator {
namespace {

// The header row (table meta) and the database header's application_id
// ("qfrj") and user_version say what the file is.
constexpr char kMagic[] = "qfarm-journal";
constexpr int kSchemaVersion = 1;
constexpr int32_t kApplicationId = 0x7166726a;

// Rows of table log, one per append, in append order (rowid):
//   kind        kJob, kResults or kCancel
//   job_id      the job (kJob, kCancel); 0 for kResults
//   created_us  the job's creation time (kJob); 0 otherwise
//   data        kJob: the tasks, encoded as a v1.SubmitJobRequest;
//               kResults, kCancel: a v1.ResultBatch
//   crc         CRC-32 of kind, job_id, created_us and data
constexpr char kSchema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta VALUES('magic', 'qfarm-journal'),"
    " ('schema_version', '1');"
    "CREATE TABLE log(kind INTEGER NOT NULL, job_id INTEGER NOT NULL,"
    " created_us INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL);";

// kBarrier (WhenDurable()) is never written.
enum Kind : int { kBarrier = 0, kJob = 1, kResults = 2, kCancel = 3 };

std::string KindName(int kind) {
  switch (kind) {
    case kJob:
      return "job";
    case kResults:
      return "results";
    case kCancel:
      return "cancel";
    default:
      return absl::StrCat("kind ", kind);
  }
}

uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint32_t Le32(const unsigned char* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) |
         (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}

uint32_t RecordCrc(int kind, JobId job, int64_t created_us, const void* data,
                   size_t size) {
  unsigned char head[17];
  head[0] = static_cast<unsigned char>(kind);
  const uint64_t created = static_cast<uint64_t>(created_us);
  for (int i = 0; i < 8; ++i) {
    head[1 + i] = static_cast<unsigned char>(job >> (8 * i));
    head[9 + i] = static_cast<unsigned char>(created >> (8 * i));
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32_z(crc, head, sizeof(head));
  // (SQLite gives a null pointer for an empty blob, and zlib returns the
  // initial value for a null buffer.)
  if (size > 0) crc = crc32_z(crc, static_cast<const Bytef*>(data), size);
  return static_cast<uint32_t>(crc);
}

// Encodes tasks as the v1.SubmitJobRequest that holds them, without
// copying them into one: each as its field `tasks`.
template <typename Tasks>
std::string EncodeTasks(const Tasks& tasks) {
  using google::protobuf::internal::WireFormatLite;
  std::string out;
  size_t total = 0;
  for (const v1::Task& task : tasks) total += task.ByteSizeLong() + 6;
  out.reserve(total);
  const uint32_t tag =
      WireFormatLite::MakeTag(v1::SubmitJobRequest::kTasksFieldNumber,
                              WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  {
    // `out` has its exact size once both are gone.
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    for (const v1::Task& task : tasks) {
      coded.WriteTag(tag);
      coded.WriteVarint32(static_cast<uint32_t>(task.GetCachedSize()));
      task.SerializeWithCachedSizes(&coded);
    }
  }
  return out;
}

std::string EncodeResults(std::vector<v1::TaskResult> results) {
  v1::ResultBatch batch;
  batch.mutable_results()->Reserve(static_cast<int>(results.size()));
  for (v1::TaskResult& result : results) {
    *batch.add_results() = std::move(result);
  }
  return batch.SerializeAsString();
}

// --- SQLite helpers ----------------------------------------------------------

struct StmtDeleter {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

// A status whose code says what the caller should do about SQLite error `rc`.
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

// The first column of every row, as text.
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

// --- Files
// --------------------------------------------------------------------

absl::Status PosixError(absl::string_view what, const std::string& path,
                        int err) {
  return absl::FailedPreconditionError(
      absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(err)));
}

// -1 when the file does not exist.
int64_t FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return st.st_size;
}

// Reads up to `size` bytes at `offset`; returns how many were read.
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

// Creates an empty journal at `path`, whole or not at all: it is built
// beside it and renamed into place, so a journal.db that exists always has
// its header and schema, and a missing or short one is damage.
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
  RETURN_IF_ERROR(Exec(db, tmp, "PRAGMA page_size=4096"));
  RETURN_IF_ERROR(Exec(
      db, tmp, absl::StrCat("PRAGMA application_id=", kApplicationId).c_str()));
  RETURN_IF_ERROR(Exec(
      db, tmp, absl::StrCat("PRAGMA user_version=", kSchemaVersion).c_str()));
  RETURN_IF_ERROR(Exec(db, tmp, "BEGIN"));
  RETURN_IF_ERROR(Exec(db, tmp, kSchema));
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
  RETURN_IF_ERROR(Fsync(tmp, false));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return PosixError("rename to journal.db", tmp, errno);
  }
  return Fsync(dir, true);
}

// Checks journal.db's first 100 bytes, and its length against the page count
// they record (skipped when the WAL holds committed frames: a checkpoint
// interrupted by a crash may leave the file short, and SQLite redoes it).
absl::Status CheckDatabaseHeader(const std::string& path, bool wal_committed) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError("open", path, errno);
  absl::Cleanup close_fd = [fd] { close(fd); };
  const int64_t size = FileSize(path);
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

// What the WAL file holds.
struct WalScan {
  // Frames up to the last valid commit: what SQLite will use.
  uint64_t committed_frames = 0;
  // Frames of this WAL generation after that: an incomplete last
  // transaction, which SQLite will ignore.
  uint64_t dropped_frames = 0;
};

// Adds `size` bytes (a multiple of 8) to SQLite's WAL checksum.
void WalChecksum(bool big_endian, const unsigned char* data, size_t size,
                 uint32_t& s1, uint32_t& s2) {
  for (size_t i = 0; i < size; i += 8) {
    s1 += (big_endian ? Be32(data + i) : Le32(data + i)) + s2;
    s2 += (big_endian ? Be32(data + i + 4) : Le32(data + i + 4)) + s1;
  }
}

// Reads the WAL as SQLite's recovery would (see "WAL File Format" in
// https://sqlite.org/fileformat2.html), and tells a crash's trace from
// damage. SQLite uses the frames up to the last commit frame whose
// cumulative checksum holds and ignores the rest without a word. With
// synchronous=FULL every commit is fsync'd before the next transaction
// starts, so a crash can only leave the last transaction incomplete; frames
// of this generation (matching salts) that form a complete transaction
// *after* a broken frame prove that committed data would be dropped.
absl::StatusOr<WalScan> ScanWal(const std::string& wal) {
  WalScan scan;
  const int fd = open(wal.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return scan;
    return PosixError("open", wal, errno);
  }
  absl::Cleanup close_fd = [fd] { close(fd); };
  const int64_t size = FileSize(wal);
  // SQLite fsyncs the header before writing any frame: a short one held
  // no transaction.
  if (size < 32) return scan;
  unsigned char header[32];
  ASSIGN_OR_RETURN(size_t got, ReadAt(fd, wal, 0, sizeof(header), header));
  if (got < sizeof(header)) return scan;
  const uint32_t magic = Be32(header);
  if (magic != 0x377f0682 && magic != 0x377f0683) {
    return absl::DataLossError(absl::StrCat(
        wal, " is damaged: its header is not a WAL header (magic 0x",
        absl::Hex(magic, absl::kZeroPad8),
        "); SQLite would silently ignore the transactions in it"));
  }
  const bool big_endian = (magic & 1) != 0;
  const uint32_t page_size = Be32(header + 8);
  uint32_t s1 = 0;
  uint32_t s2 = 0;
  WalChecksum(big_endian, header, 24, s1, s2);
  if (s1 != Be32(header + 24) || s2 != Be32(header + 28)) {
    return absl::DataLossError(
        absl::StrCat(wal,
                     " is damaged: its header fails its checksum; SQLite would "
                     "silently ignore the transactions in it"));
  }
  if (Be32(header + 4) != 3007000 || page_size < 512 || page_size > 65536 ||
      (page_size & (page_size - 1)) != 0) {
    return absl::DataLossError(
        absl::StrCat(wal, " is damaged: its header records version ",
                     Be32(header + 4), " and page size ", page_size));
  }
  const size_t frame_size = 24 + size_t{page_size};
  const uint64_t frames = static_cast<uint64_t>(size - 32) / frame_size;
  std::vector<unsigned char> frame(frame_size);

  uint64_t broken_at = 0;  // 1-based; 0 while the chain holds.
  std::string why;
  bool commit_after_break = false;
  uint64_t current_after_commit = 0;
  for (uint64_t i = 0; i < frames; ++i) {
    ASSIGN_OR_RETURN(got,
                     ReadAt(fd, wal, 32 + static_cast<int64_t>(i * frame_size),
                            frame_size, frame.data()));
    if (got < frame_size) break;
    const bool current = std::memcmp(frame.data() + 8, header + 16, 8) == 0;
    const bool commit = Be32(frame.data() + 4) != 0;
    if (broken_at == 0) {
      if (current && Be32(frame.data()) != 0) {
        uint32_t f1 = s1;
        uint32_t f2 = s2;
        WalChecksum(big_endian, frame.data(), 8, f1, f2);
        WalChecksum(big_endian, frame.data() + 24, page_size, f1, f2);
        if (f1 == Be32(frame.data() + 16) && f2 == Be32(frame.data() + 20)) {
          s1 = f1;
          s2 = f2;
          if (commit) {
            scan.committed_frames = i + 1;
            scan.dropped_frames = 0;
          } else {
            ++scan.dropped_frames;
          }
          continue;
        }
        why = "fails its checksum";
      } else {
        why = current ? "has page number 0" : "has the wrong salt";
      }
      broken_at = i + 1;
    }
    if (!current) continue;
    ++scan.dropped_frames;
    if (commit_after_break) {
      current_after_commit = i + 1;
      break;
    }
    if (commit) commit_after_break = true;
  }
  if (current_after_commit != 0) {
    return absl::DataLossError(absl::StrCat(
        wal, " is damaged: frame ", broken_at, " of ", frames, " ", why,
        ", yet transactions were committed after it (frame ",
        current_after_commit,
        " follows a later commit); SQLite would silently drop them"));
  }
  return scan;
}

}  // namespace

// --- Journal
// -------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(
    const std::string& data_dir, JournalOptions options) {
  if (data_dir.empty()) return absl::InvalidArgumentError("data dir is empty");
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data dir ", data_dir, ": ", error.message()));
  }
  const std::string lock_path = data_dir + "/journal.lock";
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return PosixError("open", lock_path, errno);
  absl::Cleanup close_lock = [&lock_fd] {
    if (lock_fd >= 0) close(lock_fd);
  };
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("data dir ", data_dir, " is in use by another process (",
                       lock_path, " is locked)"));
    }
    return PosixError("lock", lock_path, errno);
  }

  const std::string path = data_dir + "/journal.db";
  const std::string wal = path + "-wal";
  if (FileSize(path) < 0) {
    const int64_t wal_size = FileSize(wal);
    if (wal_size > 0) {
      return absl::DataLossError(
          absl::StrCat(path, " is missing but ", wal, " holds ", wal_size,
                       " bytes of it: the journal was deleted or moved"));
    }
    RETURN_IF_ERROR(CreateJournal(path, data_dir));
    QFARM_LOG(INFO) << "journal " << path << " created";
  }
  ASSIGN_OR_RETURN(WalScan scan, ScanWal(wal));
  RETURN_IF_ERROR(CheckDatabaseHeader(path, scan.committed_frames > 0));

  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  absl::Cleanup close_db = [&db] {
    if (db != nullptr) sqlite3_close_v2(db);
  };
  if (rc != SQLITE_OK) return SqliteError(db, rc, path, "open");
  sqlite3_extended_result_codes(db, 1);
  // One process owns the journal: no shared-memory index, no readers to
  // wait for at checkpoints.
  RETURN_IF_ERROR(Exec(db, path, "PRAGMA locking_mode=EXCLUSIVE"));
  ASSIGN_OR_RETURN(std::vector<std::string> mode,
                   Query(db, path, "PRAGMA journal_mode=WAL"));
  if (mode != std::vector<std::string>{"wal"}) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot use WAL mode (journal_mode is ",
                     absl::StrJoin(mode, ","), ")"));
  }
  RETURN_IF_ERROR(Exec(db, path,
                       options.sync == JournalSync::kFull
                           ? "PRAGMA synchronous=FULL"
                           : "PRAGMA synchronous=NORMAL"));

  const bool full_check =
      FileSize(path) + std::max<int64_t>(FileSize(wal), 0) <=
      options.full_check_max_bytes;
  const char* check =
      full_check ? "PRAGMA integrity_check(10)" : "PRAGMA quick_check(10)";
  ASSIGN_OR_RETURN(std::vector<std::string> problems, Query(db, path, check));
  if (problems != std::vector<std::string>{"ok"}) {
    std::string report = absl::StrJoin(problems, "; ");
    std::replace(report.begin(), report.end(), '\n', ' ');
    return absl::DataLossError(absl::StrCat(
        path, " is damaged: ", full_check ? "integrity_check" : "quick_check",
        " reports: ", report));
  }

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
  if (version != absl::StrCat(kSchemaVersion)) {
    int parsed = 0;
    if (absl::SimpleAtoi(version, &parsed) && parsed > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " was written by a newer qfarm: schema version ",
                       version, ", this one reads version ", kSchemaVersion));
    }
    return absl::DataLossError(absl::StrCat(
        path, " is damaged: its header row records schema version '", version,
        "'"));
  }
  if (scan.dropped_frames > 0) {
    QFARM_LOG(WARNING) << "journal " << path << ": dropping "
                       << scan.dropped_frames
                       << " WAL frames of an incomplete last transaction "
                          "(a crash during a write; nothing in it had been "
                          "reported durable)";
  }
  auto journal = std::unique_ptr<Journal>(
      new Journal(path, std::move(options), lock_fd, db));
  lock_fd = -1;
  db = nullptr;
  return journal;
}

Journal::Journal(std::string path, JournalOptions options, int lock_fd,
                 sqlite3* db)
    : path_(std::move(path)),
      options_(std::move(options)),
      db_(db),
      lock_fd_(lock_fd) {
  writer_ = std::thread([this] { WriterLoop(); });
}

Journal::~Journal() {
  absl::Status status = Close();
  if (!status.ok()) {
    QFARM_LOG(ERROR) << "journal " << path_
                     << " closed with an error: " << status;
  }
}

absl::StatusOr<RecoveredState> Journal::Recover() {
  {
    absl::MutexLock lock(&mu_);
    if (recovered_ || next_seq_ != 1 || closing_) {
      return absl::FailedPreconditionError(
          absl::StrCat("journal ", path_,
                       ": Recover() must be called once, right after Open()"));
    }
    recovered_ = true;
  }
  absl::MutexLock lock(&db_mu_);
  sqlite3* db = db_;
  struct Entry {
    RecoveredJob job;
    std::vector<bool> has_result;
    int64_t row = 0;
  };
  std::map<JobId, Entry> jobs;
  uint64_t results = 0;
  uint64_t orphans = 0;

  // Reads the rows of the kinds selected, checking each row's CRC.
  auto scan = [&](const char* sql, auto&& row_fn) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt stmt, Prepare(db, path_, sql));
    while (true) {
      const int rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) return absl::OkStatus();
      if (rc != SQLITE_ROW) return SqliteError(db, rc, path_, "read");
      sqlite3_stmt* s = stmt.get();
      const int64_t row = sqlite3_column_int64(s, 0);
      const int kind = sqlite3_column_int(s, 1);
      const JobId job = static_cast<JobId>(sqlite3_column_int64(s, 2));
      const int64_t created_us = sqlite3_column_int64(s, 3);
      const void* data = sqlite3_column_blob(s, 4);
      const int size = sqlite3_column_bytes(s, 4);
      const auto crc = static_cast<uint32_t>(sqlite3_column_int64(s, 5));
      const std::string what =
          absl::StrCat(path_, ": row ", row, " (", KindName(kind), ")");
      if (RecordCrc(kind, job, created_us, data, static_cast<size_t>(size)) !=
          crc) {
        return absl::DataLossError(
            absl::StrCat(what, " fails its checksum: the file is damaged"));
      }
      RETURN_IF_ERROR(row_fn(what, row, kind, job, created_us, data, size));
    }
  };

  RETURN_IF_ERROR(
      scan("SELECT rowid, kind, job_id, created_us, data, crc FROM log"
           " WHERE kind = 1 ORDER BY rowid",
           [&](const std::string& what, int64_t row, int, JobId id,
               int64_t created_us, const void* data, int size) -> absl::Status {
             v1::SubmitJobRequest request;
             if (!request.ParseFromArray(data, size)) {
               return absl::DataLossError(
                   absl::StrCat(what, ": the job's tasks do not parse"));
             }
             if (request.tasks().empty()) {
               return absl::DataLossError(
                   absl::StrCat(what, ": job ", id, " has no tasks"));
             }
             auto [it, added] = jobs.try_emplace(id);
             if (!added) {
               return absl::DataLossError(absl::StrCat(
                   what, ": job ", id, " was already journaled in row ",
                   it->second.row));
             }
             Entry& entry = it->second;
             entry.row = row;
             entry.job.id = id;
             entry.job.created_us = created_us;
             entry.job.tasks.reserve(static_cast<size_t>(request.tasks_size()));
             for (v1::Task& task : *request.mutable_tasks()) {
               entry.job.tasks.push_back(std::move(task));
             }
             entry.has_result.resize(entry.job.tasks.size());
             return absl::OkStatus();
           }));

  RETURN_IF_ERROR(
      scan("SELECT rowid, kind, job_id, created_us, data, crc FROM log"
           " WHERE kind <> 1 ORDER BY rowid",
           [&](const std::string& what, int64_t, int kind, JobId id, int64_t,
               const void* data, int size) -> absl::Status {
             if (kind != kResults && kind != kCancel) {
               return absl::DataLossError(
                   absl::StrCat(what, ": unknown record kind ", kind));
             }
             v1::ResultBatch batch;
             if (!batch.ParseFromArray(data, size)) {
               return absl::DataLossError(
                   absl::StrCat(what, ": the results do not parse"));
             }
             if (kind == kCancel) {
               auto it = jobs.find(id);
               if (it == jobs.end()) {
                 orphans += static_cast<uint64_t>(batch.results_size());
                 return absl::OkStatus();
               }
               it->second.job.cancelled = true;
             }
             for (v1::TaskResult& result : *batch.mutable_results()) {
               if (kind == kCancel && result.job_id() != id) {
                 return absl::DataLossError(
                     absl::StrCat(what, ": a result of job ", result.job_id(),
                                  " in the cancellation of job ", id));
               }
               auto it = jobs.find(result.job_id());
               if (it == jobs.end()) {
                 ++orphans;
                 continue;
               }
               Entry& entry = it->second;
               const uint32_t index = result.index();
               if (index >= entry.has_result.size()) {
                 return absl::DataLossError(absl::StrCat(
                     what, ": result for job ", result.job_id(), " task ",
                     index, ", past its ", entry.has_result.size(), " tasks"));
               }
               if (entry.has_result[index]) {
                 return absl::DataLossError(
                     absl::StrCat(what, ": a second result for job ",
                                  result.job_id(), " task ", index));
               }
               entry.has_result[index] = true;
               entry.job.results.push_back(std::move(result));
               ++results;
             }
             return absl::OkStatus();
           }));

  RecoveredState state;
  state.jobs.reserve(jobs.size());
  for (auto& [id, entry] : jobs) state.jobs.push_back(std::move(entry.job));
  QFARM_LOG(INFO) << "journal " << path_ << ": recovered " << state.jobs.size()
                  << " jobs and " << results << " results";
  if (orphans > 0) {
    QFARM_LOG(WARNING) << "journal " << path_ << ": dropped " << orphans
                       << " results of jobs that were never journaled (lost "
                          "in a crash before they were acknowledged)";
  }
  return state;
}

uint64_t Journal::AppendJob(JobId job, int64_t created_us,
                            const std::vector<v1::Task>& tasks, Done done) {
  return Enqueue(kJob, job, created_us, EncodeTasks(tasks), std::move(done));
}

uint64_t Journal::AppendJob(
    JobId job, int64_t created_us,
    const google::protobuf::RepeatedPtrField<v1::Task>& tasks, Done done) {
  return Enqueue(kJob, job, created_us, EncodeTasks(tasks), std::move(done));
}

uint64_t Journal::AppendResults(std::vector<v1::TaskResult> results,
                                Done done) {
  return Enqueue(kResults, 0, 0, EncodeResults(std::move(results)),
                 std::move(done));
}

uint64_t Journal::AppendCancel(JobId job, std::vector<v1::TaskResult> results,
                               Done done) {
  return Enqueue(kCancel, job, 0, EncodeResults(std::move(results)),
                 std::move(done));
}

uint64_t Journal::WhenDurable(Done done) {
  return Enqueue(kBarrier, 0, 0, std::string(), std::move(done));
}

uint64_t Journal::Enqueue(int kind, JobId job, int64_t created_us,
                          std::string data, Done done) {
  Record record;
  record.kind = kind;
  record.job = job;
  record.created_us = created_us;
  record.crc = RecordCrc(kind, job, created_us, data.data(), data.size());
  record.data = std::move(data);
  record.done = std::move(done);
  {
    absl::MutexLock lock(&mu_);
    if (!closing_) {
      const uint64_t seq = next_seq_++;
      record.seq = seq;
      pending_.push_back(std::move(record));
      ++stats_.appends;
      return seq;
    }
  }
  if (record.done) {
    std::move(record.done)(absl::FailedPreconditionError(
        absl::StrCat("journal ", path_, " is closed")));
  }
  return 0;
}

bool Journal::HasWork() const { return !pending_.empty() || closing_; }

void Journal::WriterLoop() {
  while (true) {
    std::vector<Record> group;
    absl::Status failed;
    size_t bytes = 0;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Journal::HasWork));
      if (pending_.empty()) return;  // Closing, and everything is written.
      // Everything appended meanwhile, up to max_group_bytes.
      while (!pending_.empty() &&
             (group.empty() || bytes + pending_.front().data.size() <=
                                   options_.max_group_bytes)) {
        bytes += pending_.front().data.size();
        group.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      failed = status_;
    }
    const absl::Time write_start = absl::Now();
    const absl::Status status = failed.ok() ? WriteGroup(group) : failed;
    const double write_seconds =
        absl::ToDoubleSeconds(absl::Now() - write_start);
    {
      absl::MutexLock lock(&mu_);
      if (status.ok()) {
        stats_.commit_seconds.Observe(write_seconds);
        ++stats_.transactions;
        stats_.bytes += bytes;
        stats_.largest_group =
            std::max<uint64_t>(stats_.largest_group, group.size());
      } else if (status_.ok()) {
        status_ = status;
        QFARM_LOG(ERROR) << "journal write failed; every later append fails "
                            "too: "
                         << status;
      }
    }
    for (Record& record : group) {
      if (record.done) std::move(record.done)(status);
    }
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      durable_seq_ = group.back().seq;
    }
  }
}

absl::Status Journal::WriteGroup(const std::vector<Record>& group) {
  absl::MutexLock lock(&db_mu_);
  if (db_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("journal ", path_, " is closed"));
  }
  static constexpr char kInsert[] =
      "INSERT INTO log(kind, job_id, created_us, data, crc)"
      " VALUES(?1, ?2, ?3, ?4, ?5)";
  if (insert_ == nullptr) {
    const int rc = sqlite3_prepare_v3(
        db_, kInsert, -1, SQLITE_PREPARE_PERSISTENT, &insert_, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, path_, kInsert);
  }
  RETURN_IF_ERROR(Exec(db_, path_, "BEGIN IMMEDIATE"));
  auto rollback = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    if (sqlite3_get_autocommit(db_) == 0) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  };
  for (const Record& record : group) {
    if (record.kind == kBarrier) continue;
    sqlite3_bind_int(insert_, 1, record.kind);
    sqlite3_bind_int64(insert_, 2, static_cast<sqlite3_int64>(record.job));
    sqlite3_bind_int64(insert_, 3, record.created_us);
    sqlite3_bind_blob64(insert_, 4, record.data.data(), record.data.size(),
                        SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 5, record.crc);
    const int rc = sqlite3_step(insert_);
    sqlite3_reset(insert_);
    if (rc != SQLITE_DONE) {
      absl::Status status = SqliteError(db_, rc, path_, "append");
      rollback();
      return status;
    }
  }
  sqlite3_clear_bindings(insert_);
  const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(db_, rc, path_, "commit");
    rollback();
    return status;
  }
  return absl::OkStatus();
}

absl::Status Journal::WaitDurable(uint64_t seq) {
  absl::MutexLock lock(&mu_);
  auto ready = [this, seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return durable_seq_ >= seq || !status_.ok() || closed_;
  };
  mu_.Await(absl::Condition(&ready));
  if (durable_seq_ >= seq) return absl::OkStatus();
  if (!status_.ok()) return status_;
  return absl::FailedPreconditionError(
      absl::StrCat("journal ", path_, " is closed"));
}

absl::Status Journal::Flush() {
  uint64_t last;
  {
    absl::MutexLock lock(&mu_);
    last = next_seq_ - 1;
  }
  return WaitDurable(last);
}

absl::Status Journal::Close() {
  absl::MutexLock close_lock(&close_mu_);
  if (close_done_) return close_status_;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  if (writer_.joinable()) writer_.join();
  const absl::Status closed = CloseDatabase();
  absl::Status written;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    written = status_;
  }
  close_status_ = written.ok() ? closed : written;
  close_done_ = true;
  return close_status_;
}

absl::Status Journal::CloseDatabase() {
  absl::MutexLock lock(&db_mu_);
  absl::Status status;
  if (insert_ != nullptr) sqlite3_finalize(insert_);
  insert_ = nullptr;
  if (db_ != nullptr) {
    // Checkpoints the WAL into journal.db and removes it.
    const int rc = sqlite3_close(db_);
    if (rc != SQLITE_OK) {
      status = SqliteError(db_, rc, path_, "close");
      sqlite3_close_v2(db_);
    }
    db_ = nullptr;
  }
  // Only now may another process open the data dir.
  if (lock_fd_ >= 0) close(lock_fd_);
  lock_fd_ = -1;
  return status;
}

absl::Status Journal::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

JournalStats Journal::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace qfarm::coordinator
