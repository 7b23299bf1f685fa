// The coordinator's durable journal: accepted jobs, final results and
// cancellations, appended to an SQLite database in WAL mode
// (`<data_dir>/journal.db`) and read back whole after a restart.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Journal> journal, Journal::Open(dir));
//   ASSIGN_OR_RETURN(RecoveredState state, journal->Recover());
//   RETURN_IF_ERROR(scheduler.Restore(std::move(state)));
//   scheduler.SetJournal(journal.get(), wake_watchers);
//   ...
//   JobId id = *scheduler.SubmitJob(tasks, kinds);
//   journal->AppendJob(id, created_us, tasks, kinds,
//                      [reactor](absl::Status s) { reactor->Finish(...); });
//
// Durability. Appends only encode and queue; one writer thread of the
// journal's own writes whatever was queued while the previous transaction
// committed as the next transaction (group commit: one fsync for a whole
// group, so a burst costs one fsync per group, not per append). An append's
// callback runs, and WaitDurable() returns, only after its transaction
// committed. With JournalSync::kFull (the default) the WAL is fsync'd at every
// commit, so what was reported durable survives a crash of the machine, not
// only of the process; kNormal fsyncs only at checkpoints (faster on slow
// disks; a machine crash may lose the last commits, a process crash cannot).
//
// Crash versus corruption. Each append is atomic: after a crash it is wholly
// there or wholly absent, and the appends present are a prefix of those
// made. An incomplete last transaction (frames at the end of journal.db-wal
// that fail SQLite's checksums) is the normal trace of a crash during a
// write: its callbacks never ran, so nothing in it was reported, and it is
// dropped (logged). Anything else is corruption and Open() or Recover() fails
// with DATA_LOSS naming the file and the damage, never silently:
//   - journal.db shorter than its header says, or not an SQLite file;
//   - pages SQLite's quick_check / integrity_check finds damaged;
//   - a WAL frame that fails its checksum with committed transactions after
//     it (SQLite itself would silently drop those), or a WAL header that is
//     not valid;
//   - a journal row whose CRC-32 does not match its contents, or whose
//     contents do not parse or contradict each other.
// Damage confined to the last transaction of the WAL cannot be told from a
// crash during it and is treated as such. A database that is not a qfarm
// journal, or of a newer schema, is FAILED_PRECONDITION.
//
// The data dir holds journal.db, its -wal file while open, and journal.lock,
// which one process at a time may hold (a second Open() on the same dir is
// FAILED_PRECONDITION). Results live in SQLite only: the journal keeps
// nothing in memory beyond the appends not yet written.
//
// Finished jobs on disk only. A job whose results the scheduler dropped from
// memory (AppendStored()) is recovered from its summary, without its tasks
// and results; LoadResults() reads those back when someone asks for them.
//
// Size. A job released under the retention settings (AppendRelease()) is
// recorded in table released, and from then on never read back. Its rows
// are deleted by the writer thread in the background, when no append waits,
// in batches of at most kPurgeBatchRows rows (of at most kPurgeBatchJobs
// jobs) per transaction, and each
// batch gives up to kVacuumPages freed pages back to the file system
// (auto_vacuum=INCREMENTAL); under a steady stream of appends a batch
// still goes after every kGroupsPerPurge groups. When no deletion is left,
// the WAL is checkpointed into journal.db and truncated. So the files follow
// the live data, and an append waits behind at most one batch. A crash during a
// batch loses nothing live: the batch is one transaction, and it deletes only
// rows of jobs already released.
//
// Thread-safe. Append*() never block and never run their callback inline
// (except after Close(), see there); callbacks run on the writer thread in
// append order, without the journal's locks held, and must not block (they
// may append).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/histogram.h"
#include "coordinator/scheduler.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "qfarm/v1/task.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace qfarm::coordinator {

enum class JournalSync {
  // PRAGMA synchronous=NORMAL: fsync at checkpoints only.
  kNormal,
  // PRAGMA synchronous=FULL: fsync the WAL at every commit.
  kFull,
};

struct JournalOptions {
  JournalSync sync = JournalSync::kFull;
  // Most bytes of encoded appends in one transaction (an append larger than
  // this gets a transaction of its own).
  size_t max_group_bytes = 16 << 20;
  // At Open(), a database of at most this many bytes gets PRAGMA
  // integrity_check; a larger one the faster quick_check.
  int64_t full_check_max_bytes = 64 << 20;
};

// Counters since Open().
struct JournalStats {
  uint64_t appends = 0;
  // Committed transactions (groups).
  uint64_t transactions = 0;
  // Appends in the largest group.
  uint64_t largest_group = 0;
  // Encoded bytes written.
  uint64_t bytes = 0;
  // Jobs released, and rows of released jobs deleted, in batches.
  uint64_t released = 0;
  uint64_t purged_rows = 0;
  uint64_t purge_batches = 0;
  // Time to write and commit (fsync included) each group.
  HistogramData commit_seconds;
};

class Journal final : public JobJournal {
 public:
  using Done = ResultJournal::Done;

  // Opens `<data_dir>/journal.db`, creating the dir and an empty journal when
  // there is none, checks it (see the header comment) and starts the writer
  // thread. INVALID_ARGUMENT for an empty data_dir; FAILED_PRECONDITION when
  // the dir cannot be created or written, another process holds it, or the
  // file is not a qfarm journal of a schema this code reads; DATA_LOSS for a
  // damaged journal. Every message names the file.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(
      const std::string& data_dir, JournalOptions options = {});

  // Close()s; an error is logged.
  ~Journal() override;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Reads back every job not released (tasks, creation time, cancelled or
  // not, by increasing id) with its final results in journal order and the
  // attempts its tasks used, and the newest kMaxReleased released jobs. Results
  // and cancellations of a job never journaled (its append was lost in a crash,
  // so it was never acknowledged) are dropped and logged. Call once, right
  // after Open(), before any append: FAILED_PRECONDITION otherwise. DATA_LOSS
  // for a row that fails its checksum or does not parse, a result for an
  // index past its job's tasks or a second one for an index, or a job
  // journaled twice.
  absl::StatusOr<RecoveredState> Recover();

  // Appends an accepted job. Its tasks are stored as given. Each Append*()
  // returns its sequence number (increasing from 1) and calls `done`, if
  // any, once the append is durable or can never be.
  uint64_t AppendJob(JobId job, int64_t created_us,
                     const std::vector<v1::Task>& tasks,
                     const std::vector<std::string>& kinds, Done done) {
    return AppendJob(job, created_us, EncodeJob(tasks, kinds), std::move(done));
  }
  // The same in two steps (JobJournal): the encoding without any lock.
  std::string EncodeJob(const std::vector<v1::Task>& tasks,
                        const std::vector<std::string>& kinds) override;
  uint64_t AppendJob(JobId job, int64_t created_us, std::string encoded_tasks,
                     Done done) override;
  // For tasks that name their kinds by name.
  uint64_t AppendJob(JobId job, int64_t created_us,
                     const std::vector<v1::Task>& tasks, Done done = nullptr) {
    return AppendJob(job, created_us, tasks, {}, std::move(done));
  }
  uint64_t AppendJob(JobId job, int64_t created_us,
                     const google::protobuf::RepeatedPtrField<v1::Task>& tasks,
                     Done done = nullptr);
  // Appends final results (ResultJournal).
  uint64_t AppendResults(std::vector<v1::TaskResult> results,
                         Done done = nullptr) override;
  // Appends that `job` was cancelled, with its cancelled tasks' results, in
  // one record (ResultJournal).
  uint64_t AppendCancel(JobId job, std::vector<v1::TaskResult> results,
                        Done done = nullptr) override;
  // Appends the attempts used by tasks that lost their worker (ResultJournal).
  uint64_t AppendAttempts(std::vector<v1::TaskResult> attempts,
                          Done done = nullptr) override;
  // Records that these jobs were released: Recover() never reads them back
  // and says they were released; their rows are deleted in the background
  // (see "Size" above). A job released twice keeps its first record.
  uint64_t AppendRelease(std::vector<ReleasedJob> jobs,
                         Done done = nullptr) override;
  // Finished jobs' results may leave the scheduler's memory: they are read
  // back from here (ResultJournal).
  bool StoresResults() const override { return true; }
  // Appends the summaries of finished jobs read back from here from now on:
  // Recover() restores each from its summary alone (ResultJournal).
  uint64_t AppendStored(std::vector<v1::StoredJob> jobs,
                        Done done = nullptr) override;
  // Reads back a job's results written so far (ResultJournal), checking each
  // row's CRC: DATA_LOSS naming the row if one fails or does not parse;
  // FAILED_PRECONDITION once closed. Holds the database (so appends wait)
  // only while it copies the rows out; they are parsed after.
  absl::StatusOr<std::vector<v1::TaskResult>> LoadResults(JobId job) override;

  // Calls `done` once every append made before this call is durable (or
  // with the error that keeps it from being so), like an append that writes
  // nothing. For replying to a call whose effect the scheduler journaled
  // (CancelJob) only once it is durable. Returns its sequence number.
  uint64_t WhenDurable(Done done) override;

  // Blocks until append `seq` and every earlier one are durable and their
  // callbacks have returned: OK, or the write error that keeps them from
  // being so. Do not call from a callback.
  absl::Status WaitDurable(uint64_t seq);
  // WaitDurable() of the latest append.
  absl::Status Flush();
  // Flush(), then blocks until no released job has rows left to delete (or
  // the journal failed or closed): for tests and benchmarks.
  absl::Status WaitPurged();

  // Writes what was appended, stops the writer thread, checkpoints and
  // closes the database, and releases the data dir. Returns the first write
  // error, if any. Idempotent. Appends after it fail at once: their callback
  // runs inline with FAILED_PRECONDITION.
  absl::Status Close();

  // OK, or the first write error: every later append fails with it. The
  // coordinator should stop (and recover from the journal on restart).
  absl::Status status() const;

  JournalStats stats() const;

  // `<data_dir>/journal.db`.
  const std::string& path() const { return path_; }

  // Rows deleted per background transaction, of at most this many jobs, and
  // freed pages given back after each.
  static constexpr int kPurgeBatchRows = 2000;
  static constexpr int kPurgeBatchJobs = 1000;
  // Under a steady stream of appends, one deletion batch after this many
  // groups.
  static constexpr int kGroupsPerPurge = 8;
  static constexpr int kVacuumPages = 256;

 private:
  // One row of an append, encoded.
  struct Row {
    int kind = 0;
    JobId job = 0;
    int64_t created_us = 0;
    std::string data;
    uint32_t crc = 0;
  };
  // One append, waiting for the writer: its rows go in one transaction.
  struct Record {
    uint64_t seq = 0;
    std::vector<Row> rows;
    size_t bytes = 0;
    Done done;
  };

  Journal(std::string path, JournalOptions options, int lock_fd, sqlite3* db);

  static Row MakeRow(int kind, JobId job, int64_t created_us, std::string data);
  uint64_t Enqueue(std::vector<Row> rows, Done done);
  bool HasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void WriterLoop();
  absl::Status WriteGroup(const std::vector<Record>& group);
  // Deletes up to kPurgeBatchRows rows of released jobs and gives freed pages
  // back, in one transaction; false when nothing is left to delete.
  absl::StatusOr<bool> PurgeBatch();
  // PurgeBatch() inside its transaction: the rows deleted, or -1 when no
  // released job has rows left.
  absl::StatusOr<int> PurgeInTransaction()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::Status Prepare(sqlite3_stmt** stmt, const char* sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::Status CloseDatabase();

  const std::string path_;
  const JournalOptions options_;

  // The SQLite connection: used by the writer thread, and by Recover()
  // before any append.
  absl::Mutex db_mu_;
  sqlite3* db_ ABSL_GUARDED_BY(db_mu_);
  // The statements of WriteGroup() and PurgeBatch(), prepared on first use.
  sqlite3_stmt* insert_ ABSL_GUARDED_BY(db_mu_) = nullptr;
  sqlite3_stmt* release_ ABSL_GUARDED_BY(db_mu_) = nullptr;
  // LoadResults()'s query, prepared on first use.
  sqlite3_stmt* load_ ABSL_GUARDED_BY(db_mu_) = nullptr;
  // journal.lock, flock()ed while open; -1 once released.
  int lock_fd_ ABSL_GUARDED_BY(db_mu_);

  mutable absl::Mutex mu_;
  // Appends not written yet, in sequence order.
  std::deque<Record> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  // Durable, callbacks run, up to this append.
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool recovered_ ABSL_GUARDED_BY(mu_) = false;
  // Released jobs may have rows left to delete (PurgeBatch()).
  bool purge_wanted_ ABSL_GUARDED_BY(mu_) = true;
  // Groups written in a row while deletion waited.
  int groups_since_purge_ ABSL_GUARDED_BY(mu_) = 0;
  // Close() asked the writer to drain and stop.
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  JournalStats stats_ ABSL_GUARDED_BY(mu_);

  // Serializes Close().
  absl::Mutex close_mu_;
  absl::Status close_status_ ABSL_GUARDED_BY(close_mu_);
  bool close_done_ ABSL_GUARDED_BY(close_mu_) = false;

  std::thread writer_;
};

}  // namespace qfarm::coordinator
