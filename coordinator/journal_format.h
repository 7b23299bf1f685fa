// The journal's format inside SQLite: its schema, the kinds of rows and how
// each row is encoded and checksummed. Shared by the writer (journal.cc),
// the read back (journal_recovery.cc) and the checks of the files
// (journal_files.cc). Part of qfarm_journal; not for other targets.
//
// Rows of table log, one per append, in append order (rowid):
//   kind        kJob, kResults or kCancel
//   job_id      the job (kJob, kCancel); 0 for kResults
//   created_us  the job's creation time (kJob); 0 otherwise
//   data        kJob: the tasks, encoded as a v1.SubmitJobRequest;
//               kResults, kCancel: a v1.ResultBatch
//   crc         CRC-32 of kind, job_id, created_us and data
// Table meta holds the header rows: magic = kMagic, schema_version =
// kSchemaVersion; the database header's application_id is kApplicationId.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/ids.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::coordinator::journal_format {

inline constexpr char kMagic[] = "qfarm-journal";
inline constexpr int kSchemaVersion = 1;
inline constexpr int32_t kApplicationId = 0x7166726a;  // "qfrj"

// Creates both tables and the header rows.
extern const char kSchema[];

// kBarrier (Journal::WhenDurable()) is never written.
enum Kind : int { kBarrier = 0, kJob = 1, kResults = 2, kCancel = 3 };

// "job", "results", "cancel", or "kind N".
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

}  // namespace qfarm::coordinator::journal_format
