#include "coordinator/journal_format.h"

#include <zlib.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "qfarm/v1/farm.pb.h"

namespace qfarm::coordinator::journal_format {
namespace {

// Each task as field `tasks` of a v1.SubmitJobRequest; one that names its
// kind by index in `kinds` gets the name as its `kind` field, written ahead
// of the task's own fields (it has no `kind` field of its own).
template <typename Tasks>
std::string EncodeEachTask(const Tasks& tasks,
                           const std::vector<std::string>& kinds) {
  using google::protobuf::internal::WireFormatLite;
  auto name_of = [&kinds](const v1::Task& task) -> const std::string* {
    if (!task.kind().empty() || task.kind_index() >= kinds.size()) {
      return nullptr;
    }
    return &kinds[task.kind_index()];
  };
  std::string out;
  size_t total = 0;
  for (const v1::Task& task : tasks) {
    total += task.ByteSizeLong() + 6;
    if (const std::string* name = name_of(task)) total += name->size() + 2;
  }
  out.reserve(total);
  const uint32_t tag =
      WireFormatLite::MakeTag(v1::SubmitJobRequest::kTasksFieldNumber,
                              WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  {
    // `out` has its exact size once both are gone.
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    for (const v1::Task& task : tasks) {
      const std::string* name = name_of(task);
      const size_t name_size =
          name == nullptr ? 0
                          : 1 + WireFormatLite::StringSize(*name);  // Tag 1.
      coded.WriteTag(tag);
      coded.WriteVarint32(
          static_cast<uint32_t>(task.GetCachedSize() + name_size));
      if (name != nullptr) {
        WireFormatLite::WriteString(v1::Task::kKindFieldNumber, *name, &coded);
      }
      task.SerializeWithCachedSizes(&coded);
    }
  }
  return out;
}

}  // namespace

const char kSchema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta VALUES('magic', 'qfarm-journal'),"
    " ('schema_version', '3');"
    "CREATE TABLE log(kind INTEGER NOT NULL, job_id INTEGER NOT NULL,"
    " created_us INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL);"
    "CREATE INDEX log_job ON log(job_id);"
    "CREATE TABLE released(job_id INTEGER PRIMARY KEY,"
    " finished_us INTEGER NOT NULL, setting TEXT NOT NULL,"
    " purged INTEGER NOT NULL DEFAULT 0);";

const char kMigrateFrom1[] =
    "CREATE INDEX log_job ON log(job_id);"
    "CREATE TABLE released(job_id INTEGER PRIMARY KEY,"
    " finished_us INTEGER NOT NULL, setting TEXT NOT NULL,"
    " purged INTEGER NOT NULL DEFAULT 0);"
    "UPDATE meta SET value = '2' WHERE key = 'schema_version';";

const char kMigrateFrom2[] =
    "UPDATE meta SET value = '3' WHERE key = 'schema_version';"
    "PRAGMA user_version=3;";

std::string KindName(int kind) {
  switch (kind) {
    case kJob:
      return "job";
    case kResults:
      return "results";
    case kCancel:
      return "cancel";
    case kAttempts:
      return "attempts";
    case kStored:
      return "stored";
    default:
      return absl::StrCat("kind ", kind);
  }
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

std::string EncodeTasks(const std::vector<v1::Task>& tasks,
                        const std::vector<std::string>& kinds) {
  return EncodeEachTask(tasks, kinds);
}

std::string EncodeTasks(
    const google::protobuf::RepeatedPtrField<v1::Task>& tasks) {
  return EncodeEachTask(tasks, {});
}

std::string EncodeResults(std::vector<v1::TaskResult> results) {
  v1::ResultBatch batch;
  batch.mutable_results()->Reserve(static_cast<int>(results.size()));
  for (v1::TaskResult& result : results) {
    *batch.add_results() = std::move(result);
  }
  return batch.SerializeAsString();
}

std::vector<std::pair<JobId, std::string>> EncodeResultsByJob(
    std::vector<v1::TaskResult> results) {
  std::vector<std::pair<JobId, std::string>> out;
  if (results.empty()) return out;
  // Nearly always one job: the common case costs one pass and no copies.
  const JobId first = results.front().job_id();
  if (std::all_of(
          results.begin(), results.end(),
          [first](const v1::TaskResult& r) { return r.job_id() == first; })) {
    out.emplace_back(first, EncodeResults(std::move(results)));
    return out;
  }
  std::vector<std::pair<JobId, v1::ResultBatch>> batches;
  for (v1::TaskResult& result : results) {
    auto it = std::find_if(batches.begin(), batches.end(), [&](const auto& b) {
      return b.first == result.job_id();
    });
    if (it == batches.end()) {
      batches.emplace_back(result.job_id(), v1::ResultBatch());
      it = batches.end() - 1;
    }
    *it->second.add_results() = std::move(result);
  }
  out.reserve(batches.size());
  for (auto& [job, batch] : batches) {
    out.emplace_back(job, batch.SerializeAsString());
  }
  return out;
}

}  // namespace qfarm::coordinator::journal_format
