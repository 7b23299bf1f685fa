// Helpers of the journal's tests: a temp data dir, tasks and results to
// append, and opening and recovering as a coordinator does.
#pragma once

#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "coordinator/journal.h"
#include "gtest/gtest.h"
#include "qfarm/v1/farm.pb.h"

namespace qfarm::coordinator {

// A fresh directory under the test's temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "journal_test.XXXXXX";
    const char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string db() const { return path_ + "/journal.db"; }
  std::string wal() const { return path_ + "/journal.db-wal"; }

 private:
  std::string path_;
};

inline std::vector<v1::Task> Echoes(size_t n, const std::string& prefix = "t") {
  std::vector<v1::Task> tasks(n);
  for (size_t i = 0; i < n; ++i) {
    tasks[i].set_kind("echo");
    tasks[i].set_text(absl::StrCat(prefix, i));
  }
  return tasks;
}

inline v1::TaskResult Result(JobId job, uint32_t index,
                             std::string value = "") {
  v1::TaskResult result;
  result.set_job_id(job);
  result.set_index(index);
  result.set_attempt(1);
  result.set_state(v1::TASK_STATE_OK);
  result.set_value(value.empty() ? absl::StrCat("v", index) : value);
  result.set_worker("w1");
  result.set_executor("thread-0");
  result.set_queued_us(1'700'000'000'000'000 + index);
  result.set_dispatched_us(1'700'000'000'000'100 + index);
  result.set_started_us(1'700'000'000'000'200 + index);
  result.set_finished_us(1'700'000'000'000'300 + index);
  return result;
}

// Results of `job` for indexes [begin, end).
inline std::vector<v1::TaskResult> Results(JobId job, uint32_t begin,
                                           uint32_t end) {
  std::vector<v1::TaskResult> out;
  for (uint32_t i = begin; i < end; ++i) out.push_back(Result(job, i));
  return out;
}

inline std::unique_ptr<Journal> MustOpen(const std::string& dir,
                                         JournalOptions options = {}) {
  absl::StatusOr<std::unique_ptr<Journal>> journal =
      Journal::Open(dir, options);
  EXPECT_TRUE(journal.ok()) << journal.status();
  return journal.ok() ? *std::move(journal) : nullptr;
}

// Opens, recovers and closes: what a coordinator does at start-up.
inline absl::StatusOr<RecoveredState> OpenAndRecover(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(dir);
  if (!journal.ok()) return journal.status();
  absl::StatusOr<RecoveredState> state = (*journal)->Recover();
  absl::Status closed = (*journal)->Close();
  if (!state.ok()) return state.status();
  if (!closed.ok()) return closed;
  return state;
}

inline std::string Bytes(const google::protobuf::Message& message) {
  return message.SerializeAsString();
}

// Runs SQL on journal.db directly, as some other program would.
inline void RunSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
  sqlite3_free(error);
  EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
}

// The rows of one column `sql` selects, as text.
inline std::vector<std::string> Column(const std::string& db_path,
                                       const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::string> out;
  EXPECT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    out.emplace_back(text == nullptr ? ""
                                     : reinterpret_cast<const char*>(text));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

inline int64_t SizeOf(const std::string& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  return error ? -1 : static_cast<int64_t>(size);
}

}  // namespace qfarm::coordinator
