#include "coordinator/journal.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "coordinator/journal_test_util.h"
#include "coordinator/scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qfarm/v1/farm.pb.h"

namespace qfarm::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAt(const std::string& path, int64_t offset, const std::string& data) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  ASSERT_TRUE(file.good()) << path;
  file.seekp(offset);
  file.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(file.good()) << path;
}

// Deterministic bytes that are neither zeros nor a valid structure.
std::string Garbage(size_t n, uint32_t seed = 12345) {
  std::string out(n, '\0');
  for (char& c : out) {
    seed = seed * 1103515245 + 12345;
    c = static_cast<char>(seed >> 16);
  }
  return out;
}

// Deterministic printable text, for result values (proto3 strings must be
// UTF-8).
std::string Filler(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  for (char& c : out) {
    seed = seed * 1103515245 + 12345;
    c = static_cast<char>('a' + (seed >> 16) % 26);
  }
  return out;
}

// --- Round trips ------------------------------------------------------------

TEST(JournalTest, FreshJournalRecoversNothing) {
  TempDir dir;
  const std::string nested = dir.path() + "/a/b";
  std::unique_ptr<Journal> journal = MustOpen(nested);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->path(), nested + "/journal.db");
  absl::StatusOr<RecoveredState> state = journal->Recover();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(state->jobs, IsEmpty());
  EXPECT_TRUE(journal->Close().ok());
}

TEST(JournalTest, TasksThatNameTheirKindByIndexAreStoredWithTheName) {
  TempDir dir;
  // An index into the job's table, a name, and the last name in the table.
  std::vector<v1::Task> tasks(3);
  tasks[0].set_kind_index(1);
  tasks[0].set_text("r");
  tasks[0].set_timeout_ms(5);
  tasks[1].set_kind("echo");
  tasks[1].set_text("e");
  tasks[2].set_kind_index(2);
  tasks[2].set_data(std::string(300, 'd'));  // A two-byte length.
  const std::vector<std::string> kinds = {"echo", "resize",
                                          std::string(64, 'k')};
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_NE(journal, nullptr);
    ASSERT_TRUE(journal->Recover().ok());
    journal->AppendJob(1, 0, tasks, kinds, nullptr);
    EXPECT_TRUE(journal->Close().ok());
  }
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  const std::vector<v1::Task>& got = state->jobs[0].tasks;
  ASSERT_THAT(got, SizeIs(3));
  EXPECT_EQ(got[0].kind(), "resize");
  EXPECT_EQ(got[0].text(), "r");
  EXPECT_EQ(got[0].timeout_ms(), 5);
  EXPECT_EQ(got[1].kind(), "echo");
  EXPECT_EQ(got[1].text(), "e");
  EXPECT_EQ(got[2].kind(), std::string(64, 'k'));
  EXPECT_EQ(got[2].data(), std::string(300, 'd'));
}

TEST(JournalTest, RoundTripOfJobsResultsAndCancel) {
  TempDir dir;
  const std::vector<v1::Task> first = Echoes(3);
  v1::SubmitJobRequest second;
  second.add_tasks()->set_kind("sleep");
  second.mutable_tasks(0)->set_arg(250);
  second.mutable_tasks(0)->set_timeout_ms(1000);
  second.mutable_tasks(0)->set_max_attempts(2);
  second.add_tasks()->set_kind("cpu");
  second.mutable_tasks(1)->set_arg(20000);
  v1::TaskResult cancelled = Result(2, 1);
  cancelled.set_state(v1::TASK_STATE_CANCELLED);
  cancelled.set_error("job cancelled");
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_NE(journal, nullptr);
    ASSERT_TRUE(journal->Recover().ok());
    EXPECT_EQ(journal->AppendJob(1, 111, first), 1u);
    EXPECT_EQ(journal->AppendJob(2, 222, second.tasks()), 2u);
    EXPECT_EQ(journal->AppendResults({Result(1, 2), Result(2, 0)}), 3u);
    EXPECT_EQ(journal->AppendResults({Result(1, 0)}), 4u);
    EXPECT_EQ(journal->AppendCancel(2, {cancelled}), 5u);
    EXPECT_TRUE(journal->Flush().ok());
    EXPECT_TRUE(journal->Close().ok());
  }
  // Closing checkpointed the WAL into journal.db.
  EXPECT_EQ(SizeOf(dir.wal()), -1);

  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(2));
  const RecoveredJob& one = state->jobs[0];
  EXPECT_EQ(one.id, 1u);
  EXPECT_EQ(one.created_us, 111);
  EXPECT_FALSE(one.cancelled);
  ASSERT_THAT(one.tasks, SizeIs(3));
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(Bytes(one.tasks[i]), Bytes(first[i]));
  ASSERT_THAT(one.results, SizeIs(2));
  EXPECT_EQ(Bytes(one.results[0]), Bytes(Result(1, 2)));
  EXPECT_EQ(Bytes(one.results[1]), Bytes(Result(1, 0)));

  const RecoveredJob& two = state->jobs[1];
  EXPECT_EQ(two.id, 2u);
  EXPECT_EQ(two.created_us, 222);
  EXPECT_TRUE(two.cancelled);
  ASSERT_THAT(two.tasks, SizeIs(2));
  EXPECT_EQ(Bytes(two.tasks[0]), Bytes(second.tasks(0)));
  EXPECT_EQ(Bytes(two.tasks[1]), Bytes(second.tasks(1)));
  ASSERT_THAT(two.results, SizeIs(2));
  EXPECT_EQ(Bytes(two.results[0]), Bytes(Result(2, 0)));
  EXPECT_EQ(Bytes(two.results[1]), Bytes(cancelled));
}

TEST(JournalTest, ReopenedJournalKeepsAppending) {
  TempDir dir;
  for (uint32_t round = 0; round < 3; ++round) {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_NE(journal, nullptr);
    absl::StatusOr<RecoveredState> state = journal->Recover();
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_THAT(state->jobs, SizeIs(round));
    for (const RecoveredJob& job : state->jobs) {
      EXPECT_THAT(job.results, SizeIs(2)) << "job " << job.id;
    }
    const JobId id = round + 1;
    journal->AppendJob(id, 0, Echoes(2));
    journal->AppendResults(Results(id, 0, 2));
    // No Flush(): Close() writes what was appended.
    EXPECT_TRUE(journal->Close().ok());
  }
}

TEST(JournalTest, CallbacksRunOnceInAppendOrderAfterCommit) {
  TempDir dir;
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Recover().ok());
  journal->AppendJob(1, 0, Echoes(100));
  absl::Mutex mu;
  std::vector<uint64_t> order;
  std::vector<uint64_t> seqs;
  for (uint32_t i = 0; i < 100; ++i) {
    seqs.push_back(journal->AppendResults(
        {Result(1, i)}, [&mu, &order, i](absl::Status status) {
          EXPECT_TRUE(status.ok()) << status;
          absl::MutexLock lock(&mu);
          order.push_back(i);
        }));
  }
  for (uint32_t i = 0; i < 100; ++i) EXPECT_EQ(seqs[i], i + 2);
  EXPECT_TRUE(journal->WaitDurable(50).ok());
  EXPECT_TRUE(journal->Flush().ok());
  {
    absl::MutexLock lock(&mu);
    ASSERT_THAT(order, SizeIs(100));
    for (uint32_t i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  }
  EXPECT_TRUE(journal->WaitDurable(0).ok());
  JournalStats stats = journal->stats();
  EXPECT_EQ(stats.appends, 101u);
  EXPECT_GE(stats.transactions, 1u);
  EXPECT_LE(stats.transactions, 101u);
  EXPECT_GT(stats.bytes, 0u);
}

TEST(JournalTest, WhenDurableFollowsEarlierAppends) {
  TempDir dir;
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Recover().ok());
  absl::Mutex mu;
  std::vector<std::string> order;
  auto note = [&](std::string what) {
    return [&mu, &order, what](absl::Status status) {
      EXPECT_TRUE(status.ok());
      absl::MutexLock lock(&mu);
      order.push_back(what);
    };
  };
  journal->AppendJob(1, 0, Echoes(1), note("job"));
  journal->AppendCancel(1, {Result(1, 0)}, note("cancel"));
  EXPECT_EQ(journal->WhenDurable(note("barrier")), 3u);
  ASSERT_TRUE(journal->Flush().ok());
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(order, ElementsAre("job", "cancel", "barrier"));
  }
  ASSERT_TRUE(journal->Close().ok());
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  EXPECT_TRUE(state->jobs[0].cancelled);
}

// While a transaction commits (here: while its callback holds the writer),
// every append that arrives joins the next transaction: one commit for all.
TEST(JournalTest, GroupCommitTakesEverythingAppendedMeanwhile) {
  TempDir dir;
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Recover().ok());
  absl::Notification entered;
  absl::Notification release;
  // Blocking in a callback is against the contract; it is how this test
  // holds the writer thread still.
  journal->AppendJob(1, 0, Echoes(1000), [&](absl::Status status) {
    EXPECT_TRUE(status.ok());
    entered.Notify();
    release.WaitForNotification();
  });
  entered.WaitForNotification();
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&journal, t] {
      for (uint32_t i = 0; i < 250; ++i) {
        journal->AppendResults({Result(1, t * 250 + i)});
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  release.Notify();
  ASSERT_TRUE(journal->Flush().ok());
  JournalStats stats = journal->stats();
  EXPECT_EQ(stats.appends, 1001u);
  EXPECT_EQ(stats.transactions, 2u);
  EXPECT_EQ(stats.largest_group, 1000u);
  ASSERT_TRUE(journal->Close().ok());
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  EXPECT_THAT(state->jobs[0].results, SizeIs(1000));
}

TEST(JournalTest, SmallGroupLimitSplitsTransactions) {
  TempDir dir;
  std::unique_ptr<Journal> journal =
      MustOpen(dir.path(), {.max_group_bytes = 1});
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Recover().ok());
  journal->AppendJob(1, 0, Echoes(10));
  for (uint32_t i = 0; i < 10; ++i) journal->AppendResults({Result(1, i)});
  ASSERT_TRUE(journal->Flush().ok());
  EXPECT_EQ(journal->stats().transactions, 11u);
  EXPECT_EQ(journal->stats().largest_group, 1u);
}

// Several threads append at once, each waiting on its own appends now and
// then; every result comes back exactly once. Meant for ThreadSanitizer.
TEST(JournalTest, ConcurrentAppendsFromSeveralThreads) {
  constexpr uint32_t kThreads = 4;
  constexpr uint32_t kBatches = 300;
  constexpr uint32_t kPerBatch = 10;
  constexpr uint32_t kTasks = kThreads * kBatches * kPerBatch;
  TempDir dir;
  std::unique_ptr<Journal> journal =
      MustOpen(dir.path(), {.sync = JournalSync::kNormal});
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Recover().ok());
  ASSERT_TRUE(
      journal->WaitDurable(journal->AppendJob(1, 0, Echoes(kTasks))).ok());
  std::atomic<uint32_t> ok{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t last = 0;
      for (uint32_t b = 0; b < kBatches; ++b) {
        const uint32_t begin = (t * kBatches + b) * kPerBatch;
        const uint64_t seq = journal->AppendResults(
            Results(1, begin, begin + kPerBatch), [&ok](absl::Status status) {
              if (status.ok()) ok.fetch_add(1);
            });
        EXPECT_GT(seq, last);
        last = seq;
        if (b % 50 == 49) {
          EXPECT_TRUE(journal->WaitDurable(seq).ok());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(journal->Flush().ok());
  EXPECT_EQ(ok.load(), kThreads * kBatches);
  JournalStats stats = journal->stats();
  std::printf("%lu appends in %lu transactions (largest %lu)\n",
              static_cast<unsigned long>(stats.appends),
              static_cast<unsigned long>(stats.transactions),
              static_cast<unsigned long>(stats.largest_group));
  ASSERT_TRUE(journal->Close().ok());

  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  std::vector<bool> seen(kTasks);
  for (const v1::TaskResult& result : state->jobs[0].results) {
    ASSERT_LT(result.index(), kTasks);
    EXPECT_FALSE(seen[result.index()]);
    seen[result.index()] = true;
    EXPECT_EQ(result.value(), absl::StrCat("v", result.index()));
  }
  EXPECT_THAT(state->jobs[0].results, SizeIs(kTasks));
}

// --- Contract ---------------------------------------------------------------

TEST(JournalTest, RecoverIsOnceAndBeforeAnyAppend) {
  TempDir dir;
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Recover().ok());
  EXPECT_EQ(journal->Recover().status().code(),
            absl::StatusCode::kFailedPrecondition);

  TempDir other;
  std::unique_ptr<Journal> appended = MustOpen(other.path());
  ASSERT_NE(appended, nullptr);
  appended->AppendJob(1, 0, Echoes(1));
  absl::Status status = appended->Recover().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("right after Open()"));
}

TEST(JournalTest, AppendAfterCloseFailsAtOnce) {
  TempDir dir;
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Close().ok());
  ASSERT_TRUE(journal->Close().ok());  // Idempotent.
  absl::Status got;
  bool called = false;
  EXPECT_EQ(journal->AppendResults({Result(1, 0)},
                                   [&](absl::Status status) {
                                     called = true;
                                     got = status;
                                   }),
            0u);
  EXPECT_TRUE(called);
  EXPECT_EQ(got.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.message()), HasSubstr("is closed"));
  EXPECT_TRUE(journal->Flush().ok());  // Nothing outstanding.
}

TEST(JournalTest, OneProcessAtATimePerDataDir) {
  TempDir dir;
  std::unique_ptr<Journal> first = MustOpen(dir.path());
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<Journal>> second = Journal::Open(dir.path());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()),
              AllOf(HasSubstr(dir.path()), HasSubstr("in use by another")));
  ASSERT_TRUE(first->Close().ok());
  EXPECT_NE(MustOpen(dir.path()), nullptr);
}

TEST(JournalTest, EmptyDataDirIsInvalid) {
  EXPECT_EQ(Journal::Open("").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(JournalTest, UnwritableDataDirIsReported) {
  TempDir dir;
  const std::string file = dir.path() + "/file";
  std::ofstream(file) << "x";
  absl::Status status = Journal::Open(file + "/sub").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr(file));
}

// --- Recovery checks --------------------------------------------------------

TEST(JournalTest, ResultsOfAJobNeverJournaledAreDropped) {
  TempDir dir;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_NE(journal, nullptr);
    journal->AppendResults({Result(7, 0)});
    journal->AppendCancel(8, {Result(8, 0)});
    journal->AppendJob(9, 0, Echoes(1));
  }
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  EXPECT_EQ(state->jobs[0].id, 9u);
  EXPECT_THAT(state->jobs[0].results, IsEmpty());
}

// A result appended before its job (a race in the shell) still pairs up.
TEST(JournalTest, ResultJournaledBeforeItsJobIsKept) {
  TempDir dir;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_NE(journal, nullptr);
    journal->AppendResults({Result(3, 1)});
    journal->AppendJob(3, 0, Echoes(2));
  }
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_THAT(state->jobs, SizeIs(1));
  ASSERT_THAT(state->jobs[0].results, SizeIs(1));
  EXPECT_EQ(state->jobs[0].results[0].index(), 1u);
}

TEST(JournalTest, InconsistentContentsAreDataLoss) {
  struct Case {
    std::string name;
    std::function<void(Journal&)> write;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"second result",
       [](Journal& j) {
         j.AppendJob(1, 0, Echoes(2));
         j.AppendResults({Result(1, 1)});
         j.AppendResults({Result(1, 1)});
       },
       "row 3 (results): a second result for job 1 task 1"},
      {"index",
       [](Journal& j) {
         j.AppendJob(1, 0, Echoes(2));
         j.AppendResults({Result(1, 0), Result(1, 2)});
       },
       "row 2 (results): result for job 1 task 2, past its 2 tasks"},
      {"job twice",
       [](Journal& j) {
         j.AppendJob(4, 0, Echoes(2));
         j.AppendJob(4, 0, Echoes(2));
       },
       "row 2 (job): job 4 was already journaled in row 1"},
      {"no tasks", [](Journal& j) { j.AppendJob(4, 0, Echoes(0)); },
       "row 1 (job): job 4 has no tasks"},
      {"no kind name",
       [](Journal& j) {
         // By index, without the table that names it.
         std::vector<v1::Task> tasks = Echoes(2);
         tasks[1].clear_kind();
         j.AppendJob(4, 0, tasks);
       },
       "row 1 (job): job 4 task 1 has no kind name"},
      {"cancel of another job",
       [](Journal& j) {
         j.AppendJob(1, 0, Echoes(2));
         j.AppendJob(2, 0, Echoes(2));
         j.AppendCancel(1, {Result(2, 0)});
       },
       "row 3 (cancel): a result of job 2 in the cancellation of job 1"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    {
      std::unique_ptr<Journal> journal = MustOpen(dir.path());
      ASSERT_NE(journal, nullptr);
      c.write(*journal);
    }
    absl::Status status = OpenAndRecover(dir.path()).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << c.name;
    EXPECT_THAT(std::string(status.message()),
                AllOf(HasSubstr(dir.db()), HasSubstr(c.message)))
        << c.name;
  }
}

// --- Damage -----------------------------------------------------------------

// A closed journal of some size: one job of 2,000 tasks, all with results
// of about 300 bytes.
void WriteSizeableJournal(const TempDir& dir) {
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_NE(journal, nullptr);
  journal->AppendJob(1, 0, Echoes(2000));
  for (uint32_t b = 0; b < 20; ++b) {
    std::vector<v1::TaskResult> batch;
    for (uint32_t i = b * 100; i < (b + 1) * 100; ++i) {
      batch.push_back(Result(1, i, Filler(300, i)));
    }
    journal->AppendResults(std::move(batch));
  }
  ASSERT_TRUE(journal->Close().ok());
  ASSERT_EQ(SizeOf(dir.wal()), -1);
  ASSERT_GT(SizeOf(dir.db()), 500'000);
}

TEST(JournalTest, TruncatedDatabaseIsReported) {
  TempDir dir;
  WriteSizeableJournal(dir);
  const int64_t size = SizeOf(dir.db());
  std::filesystem::resize_file(dir.db(), static_cast<uintmax_t>(size / 2));
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(dir.db()), HasSubstr("is truncated"),
                    HasSubstr(absl::StrCat(size / 2, " bytes")),
                    HasSubstr(absl::StrCat("(", size, " bytes)"))));
}

TEST(JournalTest, EmptyDatabaseFileIsReported) {
  TempDir dir;
  WriteSizeableJournal(dir);
  std::filesystem::resize_file(dir.db(), 0);
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(dir.db()), HasSubstr("is truncated: 0 bytes")));
}

TEST(JournalTest, GarbagePageInTheMiddleIsReported) {
  TempDir dir;
  WriteSizeableJournal(dir);
  const int64_t middle = SizeOf(dir.db()) / 2 / 4096 * 4096;
  WriteAt(dir.db(), middle, Garbage(4096));
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir.db()));
}

TEST(JournalTest, GarbageOverEveryPageIsReported) {
  // Wherever a page of garbage lands, it is reported; none is ignored.
  TempDir dir;
  WriteSizeableJournal(dir);
  const std::string original = ReadAll(dir.db());
  const int64_t pages = static_cast<int64_t>(original.size()) / 4096;
  for (int64_t page = 0; page < pages; page += 7) {
    {
      std::ofstream out(dir.db(), std::ios::binary | std::ios::trunc);
      out << original;
    }
    WriteAt(dir.db(), page * 4096, Garbage(4096, static_cast<uint32_t>(page)));
    absl::Status status = OpenAndRecover(dir.path()).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss)
        << "page " << page << ": " << status;
  }
}

TEST(JournalTest, FlippedByteInAResultIsReported) {
  TempDir dir;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_NE(journal, nullptr);
    journal->AppendJob(1, 0, Echoes(3));
    journal->AppendResults({Result(1, 0), Result(1, 1, "needle-0123456789")});
  }
  const std::string bytes = ReadAll(dir.db());
  const size_t at = bytes.find("needle-0123456789");
  ASSERT_NE(at, std::string::npos);
  WriteAt(dir.db(), static_cast<int64_t>(at + 7), "X");
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(dir.db()),
                    HasSubstr("row 2 (results) fails its checksum")));
}

TEST(JournalTest, FileThatIsNotSQLiteIsReported) {
  TempDir dir;
  std::ofstream(dir.db()) << std::string(8192, 'x');
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(dir.db()),
                    HasSubstr("does not start with the SQLite header")));
}

TEST(JournalTest, AnotherDatabaseIsNotAJournal) {
  TempDir dir;
  RunSql(dir.db(), "CREATE TABLE t(x); INSERT INTO t VALUES(1);");
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(dir.db()), HasSubstr("is not a qfarm journal")));
}

TEST(JournalTest, NewerSchemaIsRefused) {
  TempDir dir;
  ASSERT_NE(MustOpen(dir.path()), nullptr);
  RunSql(dir.db(), "UPDATE meta SET value = '4' WHERE key = 'schema_version';");
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("was written by a newer qfarm: schema version 4"));
}

TEST(JournalTest, MissingHeaderRowIsDataLoss) {
  TempDir dir;
  ASSERT_NE(MustOpen(dir.path()), nullptr);
  RunSql(dir.db(), "DELETE FROM meta WHERE key = 'magic';");
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("header row 'magic' is missing"));
}

TEST(JournalTest, DatabaseMissingBesideItsWalIsReported) {
  TempDir dir;
  std::ofstream(dir.wal()) << Garbage(5000);
  absl::Status status = OpenAndRecover(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(dir.db()), HasSubstr("is missing")));
}

// --- Crashes ----------------------------------------------------------------

constexpr uint32_t kCrashTasks = 100'000;
constexpr uint32_t kCrashBatch = 10;

// Forks a child that opens the journal, appends a job and then `flushed`
// batches of kCrashBatch results, each waited for (one transaction each),
// and tells the parent. With `keep_appending` it goes on appending batches
// without waiting; then the parent kills it with SIGKILL, mid-write.
void CrashChild(const TempDir& dir, uint32_t flushed, bool keep_appending) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(ready[0]);
    auto fail = [&] {
      (void)!write(ready[1], "e", 1);
      _exit(1);
    };
    absl::StatusOr<std::unique_ptr<Journal>> journal =
        Journal::Open(dir.path());
    if (!journal.ok() || !(*journal)->Recover().ok()) fail();
    (*journal)->AppendJob(1, 0, Echoes(kCrashTasks));
    uint32_t next = 0;
    for (uint32_t b = 0; b < flushed; ++b, next += kCrashBatch) {
      if (!(*journal)
               ->WaitDurable((*journal)->AppendResults(
                   Results(1, next, next + kCrashBatch)))
               .ok()) {
        fail();
      }
    }
    (void)!write(ready[1], "x", 1);
    while (keep_appending && next < kCrashTasks) {
      (*journal)->AppendResults(Results(1, next, next + kCrashBatch));
      next += kCrashBatch;
    }
    while (true) pause();
  }
  close(ready[1]);
  char got = 0;
  ASSERT_EQ(read(ready[0], &got, 1), 1);
  close(ready[0]);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_EQ(got, 'x') << "the child failed to write the journal";
  ASSERT_TRUE(WIFSIGNALED(wstatus));
}

// Checks the job's results are whole batches 0.. of CrashChild, in order,
// and returns how many.
uint32_t RecoveredBatches(const RecoveredState& state) {
  EXPECT_THAT(state.jobs, SizeIs(1));
  if (state.jobs.size() != 1) return 0;
  const std::vector<v1::TaskResult>& results = state.jobs[0].results;
  EXPECT_EQ(results.size() % kCrashBatch, 0u);
  for (uint32_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].index(), i);
    EXPECT_EQ(Bytes(results[i]), Bytes(Result(1, i)));
    if (results[i].index() != i) break;
  }
  return static_cast<uint32_t>(results.size() / kCrashBatch);
}

TEST(JournalCrashTest, KillDuringAppendsKeepsEveryDurableBatch) {
  TempDir dir;
  CrashChild(dir, 100, /*keep_appending=*/true);
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir.path());
  ASSERT_TRUE(state.ok()) << state.status();
  const uint32_t batches = RecoveredBatches(*state);
  // Every batch reported durable is there; of the rest, a prefix of whole
  // batches (each append is all or nothing, and they commit in order).
  EXPECT_GE(batches, 100u);
  std::printf("recovered %u batches, 100 of them reported durable\n", batches);
  // The recovered journal takes appends again.
  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Recover().ok());
  EXPECT_TRUE(journal->WaitDurable(journal->AppendJob(2, 0, Echoes(1))).ok());
}

class WalCrashTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kBatches = 40;

  void SetUp() override {
    CrashChild(dir_, kBatches, /*keep_appending=*/false);
    const std::string wal = ReadAll(dir_.wal());
    ASSERT_GE(wal.size(), 32u);
    page_size_ = (uint32_t{static_cast<unsigned char>(wal[8])} << 24) |
                 (uint32_t{static_cast<unsigned char>(wal[9])} << 16) |
                 (uint32_t{static_cast<unsigned char>(wal[10])} << 8) |
                 uint32_t{static_cast<unsigned char>(wal[11])};
    ASSERT_EQ(page_size_, 4096u);
    frames_ = (static_cast<int64_t>(wal.size()) - 32) / FrameSize();
    // One transaction per batch, none checkpointed yet.
    ASSERT_GE(frames_, kBatches);
  }

  int64_t FrameSize() const { return 24 + int64_t{page_size_}; }
  int64_t FrameOffset(int64_t frame) const { return 32 + frame * FrameSize(); }

  TempDir dir_;
  uint32_t page_size_ = 0;
  int64_t frames_ = 0;
};

TEST_F(WalCrashTest, WalOfACrashIsReplayed) {
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir_.path());
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(RecoveredBatches(*state), kBatches);
}

TEST_F(WalCrashTest, TornLastFrameDropsOnlyTheLastTransaction) {
  // A crash in the middle of writing the last transaction.
  std::filesystem::resize_file(
      dir_.wal(), static_cast<uintmax_t>(FrameOffset(frames_) - 100));
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir_.path());
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(RecoveredBatches(*state), kBatches - 1);
}

TEST_F(WalCrashTest, GarbageInTheLastFrameDropsOnlyTheLastTransaction) {
  // Indistinguishable from a torn write of the last transaction.
  WriteAt(dir_.wal(), FrameOffset(frames_ - 1) + 24 + 1000, Garbage(64));
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir_.path());
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(RecoveredBatches(*state), kBatches - 1);
}

TEST_F(WalCrashTest, GarbageInTheMiddleOfTheWalIsReported) {
  WriteAt(dir_.wal(), FrameOffset(frames_ / 2) + 24 + 1000, Garbage(64));
  absl::Status status = OpenAndRecover(dir_.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(dir_.wal()),
                    HasSubstr(absl::StrCat("frame ", frames_ / 2 + 1, " of ",
                                           frames_, " fails its checksum")),
                    HasSubstr("SQLite would silently drop them")));
}

TEST_F(WalCrashTest, GarbageOverAFrameHeaderIsReported) {
  WriteAt(dir_.wal(), FrameOffset(3), Garbage(24));
  absl::Status status = OpenAndRecover(dir_.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(dir_.wal()), HasSubstr("frame 4 of")));
}

TEST_F(WalCrashTest, GarbageOverTheWalHeaderIsReported) {
  WriteAt(dir_.wal(), 0, Garbage(32));
  absl::Status status = OpenAndRecover(dir_.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(dir_.wal()), HasSubstr("not a WAL header")));
}

TEST_F(WalCrashTest, DamagedWalHeaderChecksumIsReported) {
  WriteAt(dir_.wal(), 16, "\x01\x02\x03\x04");  // Salt 1.
  absl::Status status = OpenAndRecover(dir_.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("header fails its checksum"));
}

TEST_F(WalCrashTest, GarbageAfterTheLastFrameIsIgnored) {
  std::ofstream(dir_.wal(), std::ios::binary | std::ios::app)
      << Garbage(3 * 4120 + 77);
  absl::StatusOr<RecoveredState> state = OpenAndRecover(dir_.path());
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(RecoveredBatches(*state), kBatches);
}

// --- With the scheduler -----------------------------------------------------

// A coordinator's life: jobs and results journaled as they happen, the
// process gone, a new scheduler rebuilt from the journal.
TEST(JournalSchedulerTest, RestartResumesFromTheJournal) {
  TempDir dir;
  FakeClock clock;
  std::vector<v1::TaskResult> reported;
  {
    std::unique_ptr<Journal> journal = MustOpen(dir.path());
    ASSERT_NE(journal, nullptr);
    absl::StatusOr<RecoveredState> state = journal->Recover();
    ASSERT_TRUE(state.ok());
    Scheduler scheduler(&clock);
    ASSERT_TRUE(scheduler.Restore(*std::move(state)).ok());
    absl::Mutex mu;
    std::vector<JobId> woken;
    scheduler.SetJournal(journal.get(), [&](const std::vector<JobId>& jobs) {
      absl::MutexLock lock(&mu);
      woken.insert(woken.end(), jobs.begin(), jobs.end());
    });

    const std::vector<v1::Task> tasks = Echoes(5);
    const JobId job = *scheduler.SubmitJob(tasks);
    journal->AppendJob(job, scheduler.GetJob(job)->created_us(), tasks);
    const JobId doomed = *scheduler.SubmitJob(Echoes(2, "d"));
    journal->AppendJob(doomed, scheduler.GetJob(doomed)->created_us(),
                       Echoes(2, "d"));
    WorkerKey w =
        scheduler.AddWorker({.worker_id = "w1", .slots = 3, .kinds = {"echo"}});
    scheduler.AddCredits(w, 3);
    std::vector<Dispatch> dispatches = scheduler.TakeDispatches();
    ASSERT_THAT(dispatches, SizeIs(1));
    std::vector<v1::TaskResult> results;
    for (const v1::Assignment& a : dispatches[0].assignments) {
      v1::TaskResult result;
      result.set_job_id(a.job_id());
      result.set_index(a.index());
      result.set_attempt(a.attempt());
      result.set_state(v1::TASK_STATE_OK);
      result.set_value(a.task().text());
      results.push_back(result);
    }
    EXPECT_THAT(scheduler.RecordResults(w, results), IsEmpty());
    ASSERT_TRUE(scheduler.CancelJob(doomed).ok());
    ASSERT_TRUE(journal->Flush().ok());
    {
      absl::MutexLock lock(&mu);
      EXPECT_THAT(woken, ElementsAre(job, doomed));
    }
    reported = scheduler.ReadResults(job, 0, 100)->results;
    ASSERT_THAT(reported, SizeIs(3));
    // The process ends; the journal is closed before the scheduler goes.
    ASSERT_TRUE(journal->Close().ok());
  }

  std::unique_ptr<Journal> journal = MustOpen(dir.path());
  ASSERT_NE(journal, nullptr);
  absl::StatusOr<RecoveredState> state = journal->Recover();
  ASSERT_TRUE(state.ok()) << state.status();
  clock.Advance(absl::Seconds(30));
  Scheduler scheduler(&clock);
  ASSERT_TRUE(scheduler.Restore(*std::move(state)).ok());
  scheduler.SetJournal(journal.get(), nullptr);

  // What clients saw is there, the same; the rest runs again.
  absl::StatusOr<ResultsPage> page = scheduler.ReadResults(1, 0, 100);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->results, SizeIs(3));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(Bytes(page->results[i]), Bytes(reported[i]));
  }
  absl::StatusOr<v1::JobInfo> info = scheduler.GetJob(1);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(info->ok(), 3u);
  EXPECT_EQ(info->queued(), 2u);
  EXPECT_EQ(scheduler.GetJob(2)->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(scheduler.queued(), 2u);
  EXPECT_EQ(*scheduler.SubmitJob(Echoes(1)), 3u);
}

}  // namespace
}  // namespace qfarm::coordinator
