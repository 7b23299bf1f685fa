#include "coordinator/journal.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "coordinator/journal_files.h"
#include "coordinator/journal_format.h"
#include "coordinator/journal_io.h"
#include "coordinator/journal_recovery.h"

namespace qfarm::coordinator {
namespace {

using journal_format::EncodeResults;
using journal_format::EncodeTasks;
using journal_format::kCancel;
using journal_format::kJob;
using journal_format::kResults;
using journal_io::Exec;
using journal_io::FileSize;
using journal_io::PosixError;
using journal_io::SqliteError;

// Locks `<data_dir>/journal.lock` (created when missing) for this process;
// returns its descriptor. FAILED_PRECONDITION when another process holds
// it or it cannot be opened.
absl::StatusOr<int> LockDataDir(const std::string& data_dir) {
  const std::string lock_path = data_dir + "/journal.lock";
  const int lock_fd =
      open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return PosixError("open", lock_path, errno);
  if (flock(lock_fd, LOCK_EX | LOCK_NB) == 0) return lock_fd;
  const int err = errno;
  close(lock_fd);
  if (err == EWOULDBLOCK) {
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", data_dir, " is in use by another process (",
                     lock_path, " is locked)"));
  }
  return PosixError("lock", lock_path, err);
}

// Creates journal.db at `path` when there is none, then checks its files
// before SQLite reads them; returns what the WAL holds.
absl::StatusOr<journal_files::WalScan> PrepareFiles(const std::string& data_dir,
                                                    const std::string& path) {
  const std::string wal = path + "-wal";
  if (FileSize(path) < 0) {
    const int64_t wal_size = FileSize(wal);
    if (wal_size > 0) {
      return absl::DataLossError(
          absl::StrCat(path, " is missing but ", wal, " holds ", wal_size,
                       " bytes of it: the journal was deleted or moved"));
    }
    RETURN_IF_ERROR(journal_files::CreateJournal(path, data_dir));
    QFARM_LOG(INFO) << "journal " << path << " created";
  }
  ASSIGN_OR_RETURN(journal_files::WalScan scan, journal_files::ScanWal(wal));
  RETURN_IF_ERROR(
      journal_files::CheckDatabaseHeader(path, scan.committed_frames > 0));
  return scan;
}

// The connection's settings: one process owns the journal (no
// shared-memory index, no readers to wait for at checkpoints), WAL mode,
// and the fsyncs `sync` asks for.
absl::Status Configure(sqlite3* db, const std::string& path, JournalSync sync) {
  sqlite3_extended_result_codes(db, 1);
  RETURN_IF_ERROR(Exec(db, path, "PRAGMA locking_mode=EXCLUSIVE"));
  ASSIGN_OR_RETURN(std::vector<std::string> mode,
                   journal_io::Query(db, path, "PRAGMA journal_mode=WAL"));
  if (mode != std::vector<std::string>{"wal"}) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot use WAL mode (journal_mode is ",
                     absl::StrJoin(mode, ","), ")"));
  }
  // After each checkpoint the WAL is cut back to 4 MiB; it would otherwise
  // keep the size of its largest burst.
  RETURN_IF_ERROR(Exec(db, path, "PRAGMA journal_size_limit=4194304"));
  return Exec(db, path,
              sync == JournalSync::kFull ? "PRAGMA synchronous=FULL"
                                         : "PRAGMA synchronous=NORMAL");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(
    const std::string& data_dir, JournalOptions options) {
  if (data_dir.empty()) return absl::InvalidArgumentError("data dir is empty");
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data dir ", data_dir, ": ", error.message()));
  }
  ASSIGN_OR_RETURN(int lock_fd, LockDataDir(data_dir));
  absl::Cleanup close_lock = [&lock_fd] {
    if (lock_fd >= 0) close(lock_fd);
  };
  const std::string path = data_dir + "/journal.db";
  ASSIGN_OR_RETURN(journal_files::WalScan scan, PrepareFiles(data_dir, path));

  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  absl::Cleanup close_db = [&db] {
    if (db != nullptr) sqlite3_close_v2(db);
  };
  if (rc != SQLITE_OK) return SqliteError(db, rc, path, "open");
  RETURN_IF_ERROR(Configure(db, path, options.sync));
  const bool full_check =
      FileSize(path) + std::max<int64_t>(FileSize(path + "-wal"), 0) <=
      options.full_check_max_bytes;
  RETURN_IF_ERROR(journal_files::CheckIntegrity(db, path, full_check));
  ASSIGN_OR_RETURN(int version, journal_files::CheckIdentity(db, path));
  if (version == 1) {
    QFARM_LOG(INFO) << "journal " << path
                    << ": migrating from schema 1 to schema "
                    << journal_format::kSchemaVersion;
    RETURN_IF_ERROR(journal_files::MigrateFrom1(db, path));
  }
  if (version < journal_format::kSchemaVersion) {
    // Schema 3 adds a row kind only.
    RETURN_IF_ERROR(Exec(db, path, journal_format::kMigrateFrom2));
  }
  // A migration that stopped before its VACUUM left the file without
  // auto_vacuum: do that step again. If it fails (it needs free space the
  // size of the file), the journal works on, its freed pages only reused.
  ASSIGN_OR_RETURN(std::vector<std::string> vacuum,
                   journal_io::Query(db, path, "PRAGMA auto_vacuum"));
  if (vacuum != std::vector<std::string>{"2"}) {
    absl::Status rebuilt =
        journal_io::Exec(db, path, "PRAGMA auto_vacuum=INCREMENTAL");
    if (rebuilt.ok()) rebuilt = journal_io::Exec(db, path, "VACUUM");
    if (!rebuilt.ok()) {
      QFARM_LOG(WARNING) << "journal " << path
                         << ": cannot turn on auto_vacuum (released jobs' "
                            "pages will be reused, not given back): "
                         << rebuilt;
    }
  }
  if (scan.dropped_frames > 0) {
    QFARM_LOG(WARNING) << "journal " << path << ": dropping "
                       << scan.dropped_frames
                       << " WAL frames of an incomplete last transaction "
                          "(a crash during a write; nothing in it had been "
                          "reported durable)";
  }
  auto journal =
      std::unique_ptr<Journal>(new Journal(path, options, lock_fd, db));
  lock_fd = -1;
  db = nullptr;
  return journal;
}

Journal::Journal(std::string path, JournalOptions options, int lock_fd,
                 sqlite3* db)
    : path_(std::move(path)), options_(options), db_(db), lock_fd_(lock_fd) {
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
  return journal_recovery::ReadJournal(db_, path_);
}

Journal::Row Journal::MakeRow(int kind, JobId job, int64_t created_us,
                              std::string data) {
  Row row;
  row.kind = kind;
  row.job = job;
  row.created_us = created_us;
  row.crc = journal_format::RecordCrc(kind, job, created_us, data.data(),
                                      data.size());
  row.data = std::move(data);
  return row;
}

std::string Journal::EncodeJob(const std::vector<v1::Task>& tasks,
                               const std::vector<std::string>& kinds) {
  return EncodeTasks(tasks, kinds);
}

uint64_t Journal::AppendJob(JobId job, int64_t created_us,
                            std::string encoded_tasks, Done done) {
  std::vector<Row> rows;
  rows.push_back(MakeRow(kJob, job, created_us, std::move(encoded_tasks)));
  return Enqueue(std::move(rows), std::move(done));
}

uint64_t Journal::AppendJob(
    JobId job, int64_t created_us,
    const google::protobuf::RepeatedPtrField<v1::Task>& tasks, Done done) {
  std::vector<Row> rows;
  rows.push_back(MakeRow(kJob, job, created_us, EncodeTasks(tasks)));
  return Enqueue(std::move(rows), std::move(done));
}

uint64_t Journal::AppendResults(std::vector<v1::TaskResult> results,
                                Done done) {
  std::vector<Row> rows;
  for (auto& [job, data] :
       journal_format::EncodeResultsByJob(std::move(results))) {
    rows.push_back(MakeRow(kResults, job, 0, std::move(data)));
  }
  return Enqueue(std::move(rows), std::move(done));
}

uint64_t Journal::AppendCancel(JobId job, std::vector<v1::TaskResult> results,
                               Done done) {
  std::vector<Row> rows;
  rows.push_back(MakeRow(kCancel, job, 0, EncodeResults(std::move(results))));
  return Enqueue(std::move(rows), std::move(done));
}

uint64_t Journal::AppendAttempts(std::vector<v1::TaskResult> attempts,
                                 Done done) {
  std::vector<Row> rows;
  for (auto& [job, data] :
       journal_format::EncodeResultsByJob(std::move(attempts))) {
    rows.push_back(MakeRow(journal_format::kAttempts, job, 0, std::move(data)));
  }
  return Enqueue(std::move(rows), std::move(done));
}

uint64_t Journal::AppendRelease(std::vector<ReleasedJob> jobs, Done done) {
  std::vector<Row> rows;
  rows.reserve(jobs.size());
  for (ReleasedJob& job : jobs) {
    Row row;
    row.kind = journal_format::kRelease;
    row.job = job.id;
    row.created_us = job.finished_us;
    row.data = std::move(job.setting);
    rows.push_back(std::move(row));
  }
  return Enqueue(std::move(rows), std::move(done));
}

uint64_t Journal::WhenDurable(Done done) {
  return Enqueue({}, std::move(done));
}

uint64_t Journal::Enqueue(std::vector<Row> rows, Done done) {
  Record record;
  for (const Row& row : rows) record.bytes += row.data.size();
  record.rows = std::move(rows);
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

bool Journal::HasWork() const {
  return !pending_.empty() || closing_ || (purge_wanted_ && status_.ok());
}

void Journal::WriterLoop() {
  while (true) {
    std::vector<Record> group;
    absl::Status failed;
    size_t bytes = 0;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Journal::HasWork));
      if (pending_.empty() && closing_) return;  // Everything is written.
      failed = status_;
    }
    // Deletion keeps up under a steady stream of appends: after
    // kGroupsPerPurge groups in a row with deletion waiting, one batch goes
    // first (an append waits behind at most one batch either way).
    bool purge_first = false;
    {
      absl::MutexLock lock(&mu_);
      purge_first = purge_wanted_ && status_.ok() &&
                    groups_since_purge_ >= kGroupsPerPurge;
    }
    if (!purge_first) {
      absl::MutexLock lock(&mu_);
      // Everything appended meanwhile, up to max_group_bytes.
      while (!pending_.empty() &&
             (group.empty() ||
              bytes + pending_.front().bytes <= options_.max_group_bytes)) {
        bytes += pending_.front().bytes;
        group.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    if (group.empty()) {
      // Nothing waits (or deletion's turn came): one batch of deletion.
      absl::StatusOr<bool> more = PurgeBatch();
      absl::MutexLock lock(&mu_);
      groups_since_purge_ = 0;
      if (!more.ok()) {
        // The appends go on; a restart retries the deletion.
        QFARM_LOG(ERROR) << "journal: deleting released jobs failed: "
                         << more.status();
        purge_wanted_ = false;
      } else {
        purge_wanted_ = *more;
      }
      continue;
    }
    const absl::Time write_start = absl::Now();
    const absl::Status status = failed.ok() ? WriteGroup(group) : failed;
    const double write_seconds =
        absl::ToDoubleSeconds(absl::Now() - write_start);
    {
      absl::MutexLock lock(&mu_);
      if (purge_wanted_) ++groups_since_purge_;
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
  RETURN_IF_ERROR(Prepare(&insert_,
                          "INSERT INTO log(kind, job_id, created_us, data, crc)"
                          " VALUES(?1, ?2, ?3, ?4, ?5)"));
  // A job released twice (it cannot be, but a retry must not fail the
  // journal) keeps its first record.
  RETURN_IF_ERROR(Prepare(&release_,
                          "INSERT OR IGNORE INTO released(job_id, finished_us,"
                          " setting) VALUES(?1, ?2, ?3)"));
  RETURN_IF_ERROR(Exec(db_, path_, "BEGIN IMMEDIATE"));
  auto rollback = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    if (sqlite3_get_autocommit(db_) == 0) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  };
  uint64_t released = 0;
  for (const Record& record : group) {
    for (const Row& row : record.rows) {
      sqlite3_stmt* stmt = insert_;
      if (row.kind == journal_format::kRelease) {
        stmt = release_;
        sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(row.job));
        sqlite3_bind_int64(stmt, 2, row.created_us);
        sqlite3_bind_text(stmt, 3, row.data.data(),
                          static_cast<int>(row.data.size()), SQLITE_STATIC);
        ++released;
      } else {
        sqlite3_bind_int(stmt, 1, row.kind);
        sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(row.job));
        sqlite3_bind_int64(stmt, 3, row.created_us);
        sqlite3_bind_blob64(stmt, 4, row.data.data(), row.data.size(),
                            SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 5, row.crc);
      }
      const int rc = sqlite3_step(stmt);
      sqlite3_reset(stmt);
      if (rc != SQLITE_DONE) {
        absl::Status status = SqliteError(db_, rc, path_, "append");
        rollback();
        return status;
      }
    }
  }
  sqlite3_clear_bindings(insert_);
  sqlite3_clear_bindings(release_);
  const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(db_, rc, path_, "commit");
    rollback();
    return status;
  }
  if (released > 0) {
    absl::MutexLock lock(&mu_);
    stats_.released += released;
    purge_wanted_ = true;
  }
  return absl::OkStatus();
}

uint64_t Journal::AppendStored(std::vector<v1::StoredJob> jobs, Done done) {
  std::vector<Row> rows;
  rows.reserve(jobs.size());
  for (const v1::StoredJob& job : jobs) {
    rows.push_back(MakeRow(journal_format::kStored, job.info().job_id(), 0,
                           job.SerializeAsString()));
  }
  return Enqueue(std::move(rows), std::move(done));
}

absl::StatusOr<std::vector<v1::TaskResult>> Journal::LoadResults(JobId job) {
  struct Copied {
    int64_t rowid = 0;
    int kind = 0;
    std::string data;
  };
  std::vector<Copied> rows;
  {
    absl::MutexLock lock(&db_mu_);
    if (db_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("journal ", path_, " is closed"));
    }
    // The index on job_id gives the job's rows in rowid order.
    RETURN_IF_ERROR(Prepare(&load_,
                            "SELECT rowid, kind, created_us, data, crc FROM "
                            "log WHERE job_id = ?1 AND kind IN (2, 3) "
                            "ORDER BY rowid"));
    sqlite3_stmt* s = load_;
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(job));
    absl::Cleanup reset = [s] { sqlite3_reset(s); };
    while (true) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqliteError(db_, rc, path_, "read");
      Copied& row = rows.emplace_back();
      row.rowid = sqlite3_column_int64(s, 0);
      row.kind = sqlite3_column_int(s, 1);
      const void* data = sqlite3_column_blob(s, 3);
      const auto size = static_cast<size_t>(sqlite3_column_bytes(s, 3));
      if (journal_format::RecordCrc(row.kind, job, sqlite3_column_int64(s, 2),
                                    data, size) !=
          static_cast<uint32_t>(sqlite3_column_int64(s, 4))) {
        return absl::DataLossError(
            absl::StrCat(path_, ": row ", row.rowid, " (",
                         journal_format::KindName(row.kind),
                         ") fails its checksum: the file is damaged"));
      }
      row.data.assign(static_cast<const char*>(data), size);
    }
  }
  std::vector<v1::TaskResult> results;
  v1::ResultBatch batch;
  for (const Copied& row : rows) {
    if (!batch.ParseFromString(row.data)) {
      return absl::DataLossError(absl::StrCat(
          path_, ": row ", row.rowid, " (", journal_format::KindName(row.kind),
          "): the results do not parse"));
    }
    for (v1::TaskResult& result : *batch.mutable_results()) {
      if (result.job_id() != job) {
        return absl::DataLossError(
            absl::StrCat(path_, ": row ", row.rowid, " of job ", job,
                         " holds a result of job ", result.job_id()));
      }
      results.push_back(std::move(result));
    }
  }
  return results;
}

absl::Status Journal::Prepare(sqlite3_stmt** stmt, const char* sql) {
  if (*stmt != nullptr) return absl::OkStatus();
  const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, path_, sql);
  return absl::OkStatus();
}

absl::StatusOr<bool> Journal::PurgeBatch() {
  absl::MutexLock lock(&db_mu_);
  if (db_ == nullptr) return false;
  RETURN_IF_ERROR(Exec(db_, path_, "BEGIN IMMEDIATE"));
  absl::StatusOr<int> deleted = PurgeInTransaction();
  absl::Status status = deleted.status();
  if (status.ok()) status = Exec(db_, path_, "COMMIT");
  if (!status.ok()) {
    if (sqlite3_get_autocommit(db_) == 0) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return status;
  }
  if (*deleted < 0) {
    // A round is over: the WAL goes into journal.db and is cut to nothing,
    // so an idle journal's files hold what is live (the deletions and
    // vacuum steps reach journal.db only at a checkpoint).
    RETURN_IF_ERROR(Exec(db_, path_, "PRAGMA wal_checkpoint(TRUNCATE)"));
    return false;
  }
  absl::MutexLock stats_lock(&mu_);
  ++stats_.purge_batches;
  stats_.purged_rows += static_cast<uint64_t>(*deleted);
  return true;
}

absl::StatusOr<int> Journal::PurgeInTransaction() {
  // The oldest released jobs with rows left (kPurgeBatchJobs of them, so a
  // burst of small released jobs costs few transactions): up to
  // kPurgeBatchRows of their rows. Those left with none are marked purged.
  ASSIGN_OR_RETURN(
      std::vector<std::string> jobs,
      journal_io::Query(db_, path_,
                        absl::StrCat("SELECT job_id FROM released WHERE "
                                     "purged = 0 ORDER BY job_id LIMIT ",
                                     kPurgeBatchJobs)
                            .c_str()));
  if (jobs.empty()) {
    // The rows are gone: the pages they freed go back, a step at a time,
    // for as long as a step gives some back (without auto_vacuum none
    // does, and the free pages are only reused).
    ASSIGN_OR_RETURN(std::vector<std::string> free_before,
                     journal_io::Query(db_, path_, "PRAGMA freelist_count"));
    if (!free_before.empty() && free_before[0] != "0") {
      RETURN_IF_ERROR(
          Exec(db_, path_,
               absl::StrCat("PRAGMA incremental_vacuum(", kVacuumPages, ")")
                   .c_str()));
      ASSIGN_OR_RETURN(std::vector<std::string> free_after,
                       journal_io::Query(db_, path_, "PRAGMA freelist_count"));
      if (free_after != free_before) return 0;
    }
    // Done: the oldest records beyond kMaxReleased go, once per round.
    RETURN_IF_ERROR(Exec(
        db_, path_,
        absl::StrCat("DELETE FROM released WHERE job_id < (SELECT job_id FROM "
                     "released ORDER BY job_id DESC LIMIT 1 OFFSET ",
                     journal_format::kMaxReleased - 1, ")")
            .c_str()));
    return -1;
  }
  const std::string ids = absl::StrJoin(jobs, ",");
  RETURN_IF_ERROR(
      Exec(db_, path_,
           absl::StrCat("DELETE FROM log WHERE rowid IN (SELECT rowid FROM log "
                        "WHERE job_id IN (",
                        ids, ") LIMIT ", kPurgeBatchRows, ")")
               .c_str()));
  const int deleted = sqlite3_changes(db_);
  RETURN_IF_ERROR(Exec(
      db_, path_,
      absl::StrCat("UPDATE released SET purged = 1 WHERE job_id IN (", ids,
                   ") AND NOT EXISTS (SELECT 1 FROM log WHERE log.job_id = "
                   "released.job_id)")
          .c_str()));
  RETURN_IF_ERROR(Exec(
      db_, path_,
      absl::StrCat("PRAGMA incremental_vacuum(", kVacuumPages, ")").c_str()));
  return deleted;
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

absl::Status Journal::WaitPurged() {
  RETURN_IF_ERROR(Flush());
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !purge_wanted_ || !status_.ok() || closing_;
  };
  mu_.Await(absl::Condition(&idle));
  return status_;
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
  for (sqlite3_stmt** stmt : {&insert_, &release_, &load_}) {
    if (*stmt != nullptr) sqlite3_finalize(*stmt);
    *stmt = nullptr;
  }
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
