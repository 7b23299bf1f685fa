// The journal under retention: results stored by job, released jobs never
// read back and their rows deleted in the background, attempts journaled,
// and a schema 1 journal migrated.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/journal.h"
#include "coordinator/journal_format.h"
#include "coordinator/journal_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::SizeIs;

TEST(JournalReleaseTest, ResultsOfSeveralJobsGoInOneRowPerJob) {
  TempDir dir;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    journal->AppendJob(1, 10, Echoes(2));
    journal->AppendJob(2, 20, Echoes(2));
    std::vector<v1::TaskResult> mixed = {Result(1, 0), Result(2, 1),
                                         Result(1, 1)};
    ASSERT_TRUE(journal->WaitDurable(journal->AppendResults(mixed)).ok());
    ASSERT_TRUE(journal->Close().ok());
  }
  EXPECT_THAT(Column(dir.db(),
                     "SELECT job_id FROM log WHERE kind = 2 "
                     "ORDER BY rowid"),
              ElementsAre("1", "2"));
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(2));
  EXPECT_THAT(state->jobs[0].results, SizeIs(2));
  EXPECT_THAT(state->jobs[1].results, SizeIs(1));
}

TEST(JournalReleaseTest, ReleasedJobIsNeverReadBackAndItsRowsGo) {
  TempDir dir;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    journal->AppendJob(1, 10, Echoes(3000));
    journal->AppendJob(2, 20, Echoes(2));
    // More rows than one background batch deletes.
    for (uint32_t i = 0; i < 3000; ++i) {
      journal->AppendResults({Result(1, i)});
    }
    journal->AppendResults({Result(2, 0)});
    v1::TaskResult attempt;
    attempt.set_job_id(2);
    attempt.set_index(1);
    attempt.set_attempt(2);
    journal->AppendAttempts({attempt});
    journal->AppendRelease({{.id = 1,
                             .finished_us = 1'700'000'000'000'000,
                             .setting = "--retain-finished=1h"}});
    ASSERT_TRUE(journal->WaitPurged().ok());
    const JournalStats stats = journal->stats();
    EXPECT_EQ(stats.released, 1u);
    EXPECT_EQ(stats.purged_rows, 3001u);  // The job's row and its results.
    EXPECT_GE(stats.purge_batches, 2u);
    ASSERT_TRUE(journal->Close().ok());
  }
  EXPECT_THAT(Column(dir.db(), "SELECT COUNT(*) FROM log WHERE job_id = 1"),
              ElementsAre("0"));
  EXPECT_THAT(Column(dir.db(), "SELECT job_id || ':' || purged FROM released"),
              ElementsAre("1:1"));
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  EXPECT_EQ(state->jobs[0].id, 2u);
  EXPECT_THAT(state->jobs[0].results, SizeIs(1));
  EXPECT_THAT(state->jobs[0].attempts, ElementsAre(Pair(1u, 2u)));
  ASSERT_THAT(state->released, SizeIs(1));
  EXPECT_EQ(state->released[0].id, 1u);
  EXPECT_EQ(state->released[0].finished_us, 1'700'000'000'000'000);
  EXPECT_EQ(state->released[0].setting, "--retain-finished=1h");
}

TEST(JournalReleaseTest, FileShrinksWithWhatIsReleased) {
  TempDir dir;
  constexpr JobId kJobs = 20;
  const std::string value(2000, 'x');
  int64_t full = 0;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    for (JobId job = 1; job <= kJobs; ++job) {
      journal->AppendJob(job, 0, Echoes(200));
      std::vector<v1::TaskResult> results;
      for (uint32_t i = 0; i < 200; ++i)
        results.push_back(Result(job, i, value));
      journal->AppendResults(results);
    }
    ASSERT_TRUE(journal->Close().ok());
    full = SizeOf(dir.db());
  }
  ASSERT_GT(full, 8'000'000);
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    std::vector<ReleasedJob> released;
    for (JobId job = 1; job < kJobs; ++job) {
      released.push_back({.id = job, .finished_us = 1, .setting = "test"});
    }
    journal->AppendRelease(released);
    ASSERT_TRUE(journal->WaitPurged().ok());
    // Open and idle, its files already hold only what is live: the WAL
    // was checkpointed and cut.
    EXPECT_EQ(SizeOf(dir.wal()), 0);
    EXPECT_LT(SizeOf(dir.db()), full / 10);
    ASSERT_TRUE(journal->Close().ok());
  }
  const int64_t after = SizeOf(dir.db());
  std::printf("journal.db: %lld bytes with %d jobs, %lld with one left\n",
              static_cast<long long>(full), static_cast<int>(kJobs),
              static_cast<long long>(after));
  EXPECT_LT(after, full / 10);
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  EXPECT_THAT(state->jobs[0].results, SizeIs(200));
  EXPECT_THAT(state->released, SizeIs(kJobs - 1));
}

TEST(JournalReleaseTest, OnlyTheNewestReleasedRecordsAreKept) {
  TempDir dir;
  const JobId kTotal = journal_format::kMaxReleased + 50;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    journal->AppendJob(kTotal + 1, 0, Echoes(1));
    std::vector<ReleasedJob> released;
    for (JobId job = 1; job <= kTotal; ++job) {
      released.push_back({.id = job, .finished_us = 1, .setting = "s"});
    }
    journal->AppendRelease(released);
    ASSERT_TRUE(journal->WaitPurged().ok());
    ASSERT_TRUE(journal->Close().ok());
  }
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->released, SizeIs(journal_format::kMaxReleased));
  EXPECT_EQ(state->released.front().id, 51u);
  EXPECT_EQ(state->released.back().id, kTotal);
  ASSERT_THAT(state->jobs, SizeIs(1));
}

// A child appends jobs, releases all but the last, reports the release
// durable and keeps deleting in the background until SIGKILL.
TEST(JournalReleaseTest, KillDuringDeletionLosesNothingLive) {
  for (int round = 0; round < 3; ++round) {
    TempDir dir;
    constexpr JobId kJobs = 8;
    constexpr uint32_t kTasks = 3000;
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(ready[0]);
      absl::StatusOr<std::unique_ptr<Journal>> journal =
          Journal::Open(dir.path());
      if (!journal.ok() || !(*journal)->Recover().ok()) _exit(1);
      for (JobId job = 1; job <= kJobs; ++job) {
        (*journal)->AppendJob(job, 0, Echoes(kTasks));
        for (uint32_t i = 0; i < kTasks; i += 100) {
          (*journal)->AppendResults(Results(job, i, i + 100));
        }
      }
      std::vector<ReleasedJob> released;
      for (JobId job = 1; job < kJobs; ++job) {
        released.push_back({.id = job, .finished_us = 1, .setting = "s"});
      }
      if (!(*journal)
               ->WaitDurable((*journal)->AppendRelease(std::move(released)))
               .ok()) {
        _exit(1);
      }
      (void)!write(ready[1], "x", 1);
      while (true) pause();
    }
    close(ready[1]);
    char got = 0;
    ASSERT_EQ(read(ready[0], &got, 1), 1);
    close(ready[0]);
    // Kill points spread over the deletion (7 jobs of 3001 rows: about
    // 11 batches).
    if (round > 0) usleep(static_cast<useconds_t>(round * 20'000));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus));

    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    absl::StatusOr<RecoveredState> state = journal->Recover();
    ASSERT_TRUE(state.ok()) << state.status();
    // The live job whole; every released job released.
    ASSERT_THAT(state->jobs, SizeIs(1));
    EXPECT_EQ(state->jobs[0].id, kJobs);
    EXPECT_THAT(state->jobs[0].results, SizeIs(kTasks));
    EXPECT_THAT(state->released, SizeIs(kJobs - 1));
    // The deletion goes on after the restart, to the end.
    ASSERT_TRUE(journal->WaitPurged().ok());
    ASSERT_TRUE(journal->Close().ok());
    EXPECT_THAT(Column(dir.db(), absl::StrCat("SELECT COUNT(*) FROM log WHERE "
                                              "job_id < ",
                                              kJobs)),
                ElementsAre("0"));
  }
}

// A schema 2 journal without auto_vacuum (a migration that stopped before
// its VACUUM) gets auto_vacuum at the next open, and its deletion ends.
TEST(JournalReleaseTest, JournalWithoutAutoVacuumGetsItAtOpen) {
  TempDir dir;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    ASSERT_TRUE(journal->Close().ok());
  }
  RunSql(dir.db(), "PRAGMA auto_vacuum=NONE; VACUUM;");
  ASSERT_THAT(Column(dir.db(), "PRAGMA auto_vacuum"), ElementsAre("0"));
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_TRUE(journal->Recover().ok());
  journal->AppendJob(1, 0, Echoes(500));
  journal->AppendResults(Results(1, 0, 500));
  journal->AppendRelease({{.id = 1, .finished_us = 1, .setting = "s"}});
  ASSERT_TRUE(journal->WaitPurged().ok());
  ASSERT_TRUE(journal->Close().ok());
  EXPECT_THAT(Column(dir.db(), "PRAGMA auto_vacuum"), ElementsAre("2"));
}

// A journal as qfarm wrote it before retention: results of a group in one
// row of job 0, no table released, no auto_vacuum.
void WriteSchema1(const TempDir& dir) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.db().c_str(), &db), SQLITE_OK);
  auto exec = [db](const std::string& sql) {
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error),
              SQLITE_OK)
        << (error != nullptr ? error : "");
    sqlite3_free(error);
  };
  exec(absl::StrCat("PRAGMA application_id=", journal_format::kApplicationId));
  exec("PRAGMA journal_mode=WAL");
  exec(
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT INTO meta VALUES('magic', 'qfarm-journal'),"
      " ('schema_version', '1');"
      "CREATE TABLE log(kind INTEGER NOT NULL, job_id INTEGER NOT NULL,"
      " created_us INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER NOT "
      "NULL);");
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO log VALUES(?1, ?2, ?3, ?4, ?5)",
                               -1, &insert, nullptr),
            SQLITE_OK);
  auto row = [&](int kind, JobId job, int64_t created,
                 const std::string& data) {
    sqlite3_bind_int(insert, 1, kind);
    sqlite3_bind_int64(insert, 2, static_cast<sqlite3_int64>(job));
    sqlite3_bind_int64(insert, 3, created);
    sqlite3_bind_blob(insert, 4, data.data(), static_cast<int>(data.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert, 5,
                       journal_format::RecordCrc(kind, job, created,
                                                 data.data(), data.size()));
    EXPECT_EQ(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_reset(insert);
  };
  row(journal_format::kJob, 1, 10, journal_format::EncodeTasks(Echoes(3)));
  row(journal_format::kJob, 2, 20, journal_format::EncodeTasks(Echoes(2)));
  row(journal_format::kResults, 0, 0,
      journal_format::EncodeResults({Result(1, 0), Result(2, 0)}));
  row(journal_format::kResults, 0, 0,
      journal_format::EncodeResults({Result(1, 2)}));
  sqlite3_finalize(insert);
  ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
}

TEST(JournalReleaseTest, Schema1JournalIsMigrated) {
  TempDir dir;
  WriteSchema1(dir);
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(2));
  ASSERT_THAT(state->jobs[0].results, SizeIs(2));
  EXPECT_EQ(Bytes(state->jobs[0].results[0]), Bytes(Result(1, 0)));
  EXPECT_EQ(Bytes(state->jobs[0].results[1]), Bytes(Result(1, 2)));
  ASSERT_THAT(state->jobs[1].results, SizeIs(1));
  EXPECT_EQ(Bytes(state->jobs[1].results[0]), Bytes(Result(2, 0)));
  EXPECT_THAT(Column(dir.db(), "SELECT COUNT(*) FROM log WHERE job_id = 0"),
              ElementsAre("0"));
  EXPECT_THAT(
      Column(dir.db(), "SELECT value FROM meta WHERE key = 'schema_version'"),
      ElementsAre("3"));
  EXPECT_THAT(Column(dir.db(), "PRAGMA auto_vacuum"), ElementsAre("2"));
  // And it is a journal like any other from then on: a release works.
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_TRUE(journal->Recover().ok());
    journal->AppendRelease({{.id = 1, .finished_us = 1, .setting = "s"}});
    ASSERT_TRUE(journal->WaitPurged().ok());
    ASSERT_TRUE(journal->Close().ok());
  }
  state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  EXPECT_EQ(state->jobs[0].id, 2u);
}

}  // namespace
}  // namespace qfarm::coordinator
