// Finished jobs kept on disk only: a stored job's summary is recovered
// without its tasks and results, LoadResults() reads those back in journal
// order and refuses damaged rows, and a schema 2 journal is read as before.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/journal.h"
#include "coordinator/journal_format.h"
#include "coordinator/journal_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

v1::StoredJob Summary(JobId job, uint32_t total, int64_t created_us) {
  v1::StoredJob stored;
  v1::JobInfo& info = *stored.mutable_info();
  info.set_job_id(job);
  info.set_state(v1::JOB_STATE_DONE);
  info.set_total(total);
  info.set_ok(total);
  info.set_created_us(created_us);
  info.set_finished_us(created_us + 5);
  info.set_client("ipv4:127.0.0.1");
  stored.set_result_bytes(1234);
  return stored;
}

std::vector<std::string> AllBytes(const std::vector<v1::TaskResult>& results) {
  std::vector<std::string> out;
  for (const v1::TaskResult& result : results) {
    out.push_back(result.SerializeAsString());
  }
  return out;
}

// Job 1 (3 tasks, finished and stored), job 2 (2 tasks, one result).
void WriteTwoJobs(const std::string& dir) {
  std::unique_ptr<Journal> journal = MustOpen(dir);
  ASSERT_TRUE(journal->Recover().ok());
  journal->AppendJob(1, 10, Echoes(3));
  journal->AppendJob(2, 20, Echoes(2));
  journal->AppendResults({Result(1, 2), Result(2, 0)});
  journal->AppendResults({Result(1, 0), Result(1, 1)});
  journal->AppendStored({Summary(1, 3, 10)});
  ASSERT_TRUE(journal->Close().ok());
}

TEST(JournalStoredTest, StoredJobIsRecoveredFromItsSummaryAlone) {
  TempDir dir;
  WriteTwoJobs(dir.path());
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(2));
  const RecoveredJob& stored = state->jobs[0];
  EXPECT_EQ(stored.id, 1u);
  ASSERT_TRUE(stored.stored.has_value());
  EXPECT_EQ(stored.stored->SerializeAsString(),
            Summary(1, 3, 10).SerializeAsString());
  EXPECT_EQ(stored.created_us, 10);
  EXPECT_THAT(stored.tasks, SizeIs(0));
  EXPECT_THAT(stored.results, SizeIs(0));
  // The other job as before.
  const RecoveredJob& live = state->jobs[1];
  EXPECT_FALSE(live.stored.has_value());
  EXPECT_THAT(live.tasks, SizeIs(2));
  ASSERT_THAT(live.results, SizeIs(1));
  EXPECT_EQ(live.results[0].SerializeAsString(),
            Result(2, 0).SerializeAsString());
}

TEST(JournalStoredTest, LoadResultsGivesAJobsResultsInJournalOrder) {
  TempDir dir;
  WriteTwoJobs(dir.path());
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_TRUE(journal->Recover().ok());
  absl::StatusOr<std::vector<v1::TaskResult>> one = journal->LoadResults(1);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(AllBytes(*one),
            AllBytes({Result(1, 2), Result(1, 0), Result(1, 1)}));
  // A cancellation's results count too; appends not written yet do not.
  std::vector<v1::TaskResult> cancelled = {Result(2, 1)};
  cancelled[0].set_state(v1::TASK_STATE_CANCELLED);
  ASSERT_TRUE(journal->WaitDurable(journal->AppendCancel(2, cancelled)).ok());
  absl::StatusOr<std::vector<v1::TaskResult>> two = journal->LoadResults(2);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(AllBytes(*two), AllBytes({Result(2, 0), cancelled[0]}));
  absl::StatusOr<std::vector<v1::TaskResult>> none = journal->LoadResults(7);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_THAT(*none, SizeIs(0));

  ASSERT_TRUE(journal->Close().ok());
  EXPECT_EQ(journal->LoadResults(1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(JournalStoredTest, DamagedRowIsDataLossOnLoad) {
  TempDir dir;
  WriteTwoJobs(dir.path());
  // Job 1's second row of results, changed behind the journal's back.
  RunSql(dir.db(),
         "UPDATE log SET data = X'0a00' WHERE rowid = (SELECT MAX(rowid) FROM "
         "log WHERE kind = 2 AND job_id = 1)");
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  // Recovery does not read a stored job's rows...
  ASSERT_TRUE(journal->Recover().ok());
  // ...loading it does, and says which row is damaged.
  absl::Status status = journal->LoadResults(1).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("(results) fails its checksum"));
  EXPECT_TRUE(journal->LoadResults(2).ok());
}

TEST(JournalStoredTest, SecondSummaryOfAJobIsDataLoss) {
  TempDir dir;
  WriteTwoJobs(dir.path());
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    journal->AppendStored({Summary(1, 3, 10)});
    ASSERT_TRUE(journal->Close().ok());
  }
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("job 1 was already stored in row"));
}

TEST(JournalStoredTest, ReleasedStoredJobIsNotRecovered) {
  TempDir dir;
  WriteTwoJobs(dir.path());
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    journal->AppendRelease({{.id = 1, .finished_us = 15, .setting = "s"}});
    ASSERT_TRUE(journal->WaitPurged().ok());
    ASSERT_TRUE(journal->Close().ok());
  }
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  EXPECT_EQ(state->jobs[0].id, 2u);
  ASSERT_THAT(state->released, SizeIs(1));
  EXPECT_EQ(state->released[0].id, 1u);
}

TEST(JournalStoredTest, Schema2JournalIsReadAndBecomesSchema3) {
  TempDir dir;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    journal->AppendJob(1, 10, Echoes(1));
    journal->AppendResults({Result(1, 0)});
    ASSERT_TRUE(journal->Close().ok());
  }
  RunSql(dir.db(),
         "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
         "PRAGMA user_version=2;");
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  EXPECT_THAT(state->jobs[0].results, SizeIs(1));
  EXPECT_THAT(
      Column(dir.db(), "SELECT value FROM meta WHERE key = 'schema_version'"),
      ::testing::ElementsAre("3"));
}

}  // namespace
}  // namespace qfarm::coordinator
