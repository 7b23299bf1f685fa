// The journal's format inside SQLite: its schema, the kinds of rows and how
// each row is encoded and checksummed. Shared by the writer (journal.cc),
// the read back (journal_recovery.cc) and the checks of the files
// (journal_files.cc). Part of qfarm_journal; not for other targets.
//
// Rows of table log, in append order (rowid); an append of results of
// several jobs writes one row per job, in one transaction:
//   kind        kJob, kResults, kCancel, kAttempts or kStored
//   job_id      the job (indexed: a released job's rows are deleted by it)
//   created_us  the job's creation time (kJob); 0 otherwise
//   data        kJob: the tasks, encoded as a v1.SubmitJobRequest;
//               kResults, kCancel: a v1.ResultBatch of the job's results;
//               kAttempts: a v1.ResultBatch whose results carry only
//               job_id, index and attempt: the attempts used by tasks that
//               lost their worker;
//               kStored: a v1.StoredJob, the summary of a finished job whose
//               results the coordinator dropped from memory (at most one
//               per job): a restart restores the job from it, without its
//               kJob row and results, which are read back when asked for
//   crc         CRC-32 of kind, job_id, created_us and data
// Rows of table released, one per job released under the retention
// settings, newest kMaxReleased kept: job_id, finished_us, setting (the
// setting it was released under, "--retain-finished=1h"), and purged (1 once
// its log rows are all deleted; they are deleted in the background, in
// bounded batches, and never read back meanwhile).
// The database uses auto_vacuum=INCREMENTAL, so pages freed by the deletes
// are given back in small steps (PRAGMA incremental_vacuum).
// Table meta holds the header rows: magic = kMagic, schema_version =
// kSchemaVersion; the database header's application_id is kApplicationId.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/ids.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::coordinator::journal_format {

inline constexpr char kMagic[] = "qfarm-journal";
// 2: results rows by job, table released, auto_vacuum. 3: rows of kind
// kStored. A journal of schema 1 or 2 is migrated at Open()
// (MigrateFrom1(), kMigrateFrom2).
inline constexpr int kSchemaVersion = 3;
// Rows of table released kept (the job ids a coordinator can still say were
// released, with when they finished).
inline constexpr int64_t kMaxReleased = 100'000;
inline constexpr int32_t kApplicationId = 0x7166726a;  // "qfrj"

// Creates both tables and the header rows.
extern const char kSchema[];

// kBarrier (Journal::WhenDurable()) is never written; kRelease is a row of
// table released, not of log.
enum Kind : int {
  kBarrier = 0,
  kJob = 1,
  kResults = 2,
  kCancel = 3,
  kAttempts = 4,
  kRelease = 5,
  kStored = 6,
};

// What schema 1 lacks (the rows' split by job is done in code).
extern const char kMigrateFrom1[];
// Schema 2 to 3: nothing but the version (kStored rows are new).
extern const char kMigrateFrom2[];

// "job", "results", "cancel", "attempts", "stored", or "kind N".
std::string KindName(int kind);

uint32_t RecordCrc(int kind, JobId job, int64_t created_us, const void* data,
                   size_t size);

// Tasks as the v1.SubmitJobRequest that holds them, without copying them
// into one. A task that names its kind by index in `kinds` (v1::Task's
// kind_index) is stored with the name itself, so that the journal needs no
// table.
std::string EncodeTasks(const std::vector<v1::Task>& tasks,
                        const std::vector<std::string>& kinds = {});
std::string EncodeTasks(
    const google::protobuf::RepeatedPtrField<v1::Task>& tasks);
// Results as a v1.ResultBatch.
std::string EncodeResults(std::vector<v1::TaskResult> results);
// Results as one v1.ResultBatch per job (by result.job_id()), in the order
// each job first appears.
std::vector<std::pair<JobId, std::string>> EncodeResultsByJob(
    std::vector<v1::TaskResult> results);

}  // namespace qfarm::coordinator::journal_format
