#include "coordinator/journal_recovery.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "coordinator/journal_format.h"
#include "coordinator/journal_io.h"
#include "qfarm/v1/farm.pb.h"

namespace qfarm::coordinator::journal_recovery {
namespace {

using journal_format::kCancel;
using journal_format::kResults;

// One row of table log, its CRC checked.
struct Row {
  std::string what;  // "PATH: row N (KIND)", for messages.
  int64_t rowid = 0;
  int kind = 0;
  JobId job = 0;
  int64_t created_us = 0;
  const void* data = nullptr;
  int size = 0;
};

// Builds the recovered state from the rows, jobs first, then results and
// cancellations.
class Recovery {
 public:
  Recovery(sqlite3* db, const std::string& path) : db_(db), path_(path) {}

  absl::StatusOr<RecoveredState> Run() {
    RecoveredState state;
    RETURN_IF_ERROR(ReadReleased(state));
    // Released jobs' rows not deleted yet are never read.
    constexpr char kLive[] =
        " AND job_id NOT IN (SELECT job_id FROM released WHERE purged = 0)";
    // A stored job comes back from its summary alone: its tasks and results
    // are read when asked for (Journal::LoadResults()).
    constexpr char kNotStored[] =
        " AND job_id NOT IN (SELECT job_id FROM log WHERE kind = 6)";
    RETURN_IF_ERROR(
        ReadRows(absl::StrCat("WHERE kind = 6", kLive),
                 [this](const Row& row) { return AddStored(row); }));
    RETURN_IF_ERROR(ReadRows(absl::StrCat("WHERE kind = 1", kLive, kNotStored),
                             [this](const Row& row) { return AddJob(row); }));
    RETURN_IF_ERROR(ReadRows(
        absl::StrCat("WHERE kind <> 1 AND kind <> 6", kLive, kNotStored),
        [this](const Row& row) { return AddResults(row); }));
    state.jobs.reserve(jobs_.size());
    for (auto& [id, entry] : jobs_) state.jobs.push_back(std::move(entry.job));
    QFARM_LOG(INFO) << "journal " << path_ << ": recovered "
                    << state.jobs.size() << " jobs (" << stored_
                    << " of them finished, their results left on disk) and "
                    << results_ << " results; " << state.released.size()
                    << " released jobs on record";
    if (orphans_ > 0) {
      QFARM_LOG(WARNING) << "journal " << path_ << ": dropped " << orphans_
                         << " results of jobs that were never journaled (lost "
                            "in a crash before they were acknowledged)";
    }
    return state;
  }

 private:
  struct Entry {
    RecoveredJob job;
    std::vector<bool> has_result;
    int64_t rowid = 0;
  };

  // The newest kMaxReleased released jobs, and the highest id released.
  absl::Status ReadReleased(RecoveredState& state) {
    ASSIGN_OR_RETURN(
        journal_io::Stmt stmt,
        journal_io::Prepare(
            db_, path_,
            absl::StrCat("SELECT job_id, finished_us, setting FROM released "
                         "ORDER BY job_id DESC LIMIT ",
                         journal_format::kMaxReleased)
                .c_str()));
    sqlite3_stmt* s = stmt.get();
    while (true) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        return journal_io::SqliteError(db_, rc, path_, "read");
      }
      const auto* setting =
          reinterpret_cast<const char*>(sqlite3_column_text(s, 2));
      state.released.push_back(
          ReleasedJob{.id = static_cast<JobId>(sqlite3_column_int64(s, 0)),
                      .finished_us = sqlite3_column_int64(s, 1),
                      .setting = setting == nullptr ? "" : setting});
    }
    std::reverse(state.released.begin(), state.released.end());
    return absl::OkStatus();
  }

  // Calls `take` for each row `where` selects, in rowid order, after
  // checking its CRC.
  absl::Status ReadRows(const std::string& where,
                        absl::FunctionRef<absl::Status(const Row&)> take) {
    const std::string sql =
        absl::StrCat("SELECT rowid, kind, job_id, created_us, data, crc",
                     " FROM log ", where, " ORDER BY rowid");
    ASSIGN_OR_RETURN(journal_io::Stmt stmt,
                     journal_io::Prepare(db_, path_, sql.c_str()));
    sqlite3_stmt* s = stmt.get();
    while (true) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) return absl::OkStatus();
      if (rc != SQLITE_ROW) {
        return journal_io::SqliteError(db_, rc, path_, "read");
      }
      Row row{.rowid = sqlite3_column_int64(s, 0),
              .kind = sqlite3_column_int(s, 1),
              .job = static_cast<JobId>(sqlite3_column_int64(s, 2)),
              .created_us = sqlite3_column_int64(s, 3),
              .data = sqlite3_column_blob(s, 4),
              .size = sqlite3_column_bytes(s, 4)};
      const auto crc = static_cast<uint32_t>(sqlite3_column_int64(s, 5));
      row.what = absl::StrCat(path_, ": row ", row.rowid, " (",
                              journal_format::KindName(row.kind), ")");
      if (journal_format::RecordCrc(row.kind, row.job, row.created_us, row.data,
                                    static_cast<size_t>(row.size)) != crc) {
        return absl::DataLossError(
            absl::StrCat(row.what, " fails its checksum: the file is damaged"));
      }
      RETURN_IF_ERROR(take(row));
    }
  }

  absl::Status AddStored(const Row& row) {
    v1::StoredJob stored;
    if (!stored.ParseFromArray(row.data, row.size)) {
      return absl::DataLossError(
          absl::StrCat(row.what, ": the job's summary does not parse"));
    }
    if (stored.info().job_id() != row.job || stored.info().total() == 0) {
      return absl::DataLossError(absl::StrCat(
          row.what, ": the summary of job ", stored.info().job_id(), " with ",
          stored.info().total(), " tasks in a row of job ", row.job));
    }
    auto [it, added] = jobs_.try_emplace(row.job);
    if (!added) {
      return absl::DataLossError(absl::StrCat(row.what, ": job ", row.job,
                                              " was already stored in row ",
                                              it->second.rowid));
    }
    it->second.rowid = row.rowid;
    it->second.job.id = row.job;
    it->second.job.created_us = stored.info().created_us();
    it->second.job.stored = std::move(stored);
    ++stored_;
    return absl::OkStatus();
  }

  absl::Status AddJob(const Row& row) {
    v1::SubmitJobRequest request;
    if (!request.ParseFromArray(row.data, row.size)) {
      return absl::DataLossError(
          absl::StrCat(row.what, ": the job's tasks do not parse"));
    }
    if (request.tasks().empty()) {
      return absl::DataLossError(
          absl::StrCat(row.what, ": job ", row.job, " has no tasks"));
    }
    auto [it, added] = jobs_.try_emplace(row.job);
    if (!added) {
      return absl::DataLossError(absl::StrCat(row.what, ": job ", row.job,
                                              " was already journaled in row ",
                                              it->second.rowid));
    }
    Entry& entry = it->second;
    entry.rowid = row.rowid;
    entry.job.id = row.job;
    entry.job.created_us = row.created_us;
    entry.job.tasks.reserve(static_cast<size_t>(request.tasks_size()));
    for (v1::Task& task : *request.mutable_tasks()) {
      // Tasks are journaled with their kind's name (EncodeTasks()).
      if (task.kind().empty()) {
        return absl::DataLossError(
            absl::StrCat(row.what, ": job ", row.job, " task ",
                         entry.job.tasks.size(), " has no kind name"));
      }
      entry.job.tasks.push_back(std::move(task));
    }
    entry.has_result.resize(entry.job.tasks.size());
    return absl::OkStatus();
  }

  absl::Status AddResults(const Row& row) {
    if (row.kind != kResults && row.kind != kCancel &&
        row.kind != journal_format::kAttempts) {
      return absl::DataLossError(
          absl::StrCat(row.what, ": unknown record kind ", row.kind));
    }
    v1::ResultBatch batch;
    if (!batch.ParseFromArray(row.data, row.size)) {
      return absl::DataLossError(
          absl::StrCat(row.what, ": the results do not parse"));
    }
    if (row.kind == kCancel) {
      auto it = jobs_.find(row.job);
      if (it == jobs_.end()) {
        orphans_ += static_cast<uint64_t>(batch.results_size());
        return absl::OkStatus();
      }
      it->second.job.cancelled = true;
    }
    if (row.kind == journal_format::kAttempts) {
      auto it = jobs_.find(row.job);
      if (it == jobs_.end()) return absl::OkStatus();
      for (const v1::TaskResult& attempt : batch.results()) {
        if (attempt.job_id() != row.job ||
            attempt.index() >= it->second.has_result.size()) {
          return absl::DataLossError(absl::StrCat(
              row.what, ": attempts of job ", attempt.job_id(), " task ",
              attempt.index(), " do not belong to job ", row.job));
        }
        it->second.job.attempts.emplace_back(attempt.index(),
                                             attempt.attempt());
      }
      return absl::OkStatus();
    }
    for (v1::TaskResult& result : *batch.mutable_results()) {
      if (row.kind == kCancel && result.job_id() != row.job) {
        return absl::DataLossError(
            absl::StrCat(row.what, ": a result of job ", result.job_id(),
                         " in the cancellation of job ", row.job));
      }
      RETURN_IF_ERROR(AddResult(row, std::move(result)));
    }
    return absl::OkStatus();
  }

  absl::Status AddResult(const Row& row, v1::TaskResult result) {
    auto it = jobs_.find(result.job_id());
    if (it == jobs_.end()) {
      ++orphans_;
      return absl::OkStatus();
    }
    Entry& entry = it->second;
    const uint32_t index = result.index();
    if (index >= entry.has_result.size()) {
      return absl::DataLossError(absl::StrCat(
          row.what, ": result for job ", result.job_id(), " task ", index,
          ", past its ", entry.has_result.size(), " tasks"));
    }
    if (entry.has_result[index]) {
      return absl::DataLossError(
          absl::StrCat(row.what, ": a second result for job ", result.job_id(),
                       " task ", index));
    }
    entry.has_result[index] = true;
    entry.job.results.push_back(std::move(result));
    ++results_;
    return absl::OkStatus();
  }

  sqlite3* const db_;
  const std::string& path_;
  std::map<JobId, Entry> jobs_;
  uint64_t results_ = 0;
  uint64_t stored_ = 0;
  uint64_t orphans_ = 0;
};

}  // namespace

absl::StatusOr<RecoveredState> ReadJournal(sqlite3* db,
                                           const std::string& path) {
  return Recovery(db, path).Run();
}

}  // namespace qfarm::coordinator::journal_recovery
