// Routing by kind: each task goes only to a worker that offers its kind,
// credits stay per worker, and tasks no connected worker can run hold up
// nothing.
#include "coordinator/scheduler_test_util.h"

namespace qfarm::coordinator {
namespace {

using ::testing::ElementsAre;

v1::Task Of(std::string kind, std::string text) {
  v1::Task task;
  task.set_kind(std::move(kind));
  task.set_text(std::move(text));
  return task;
}

std::vector<std::string> Texts(const std::vector<v1::Assignment>& got) {
  std::vector<std::string> out;
  for (const v1::Assignment& a : got) out.push_back(a.task().text());
  return out;
}

TEST_F(SchedulerTest, TasksGoOnlyToWorkersThatOfferTheirKind) {
  Submit({Of("resize", "r0"), Echo("e0"), Of("action", "a0"),
          Of("resize", "r1"), Echo("e1")});
  const WorkerKey resizer = KindWorker("resizer", {"resize"}, 10);
  const WorkerKey both = KindWorker("both", {"echo", "action"}, 10);
  std::vector<Dispatch> dispatches = scheduler_.TakeDispatches();
  EXPECT_THAT(Texts(For(dispatches, resizer)), ElementsAre("r0", "r1"));
  // Across its kinds a worker takes tasks in FIFO order.
  EXPECT_THAT(Texts(For(dispatches, both)), ElementsAre("e0", "a0", "e1"));
}

TEST_F(SchedulerTest, TasksOfAKindNobodyOffersBlockNothing) {
  // Older tasks of a kind no worker offers, then echoes.
  const JobId waiting = Submit({Of("resize", "r0"), Of("resize", "r1")});
  const JobId echoes = Submit(Echoes(3));
  const WorkerKey w = Worker("w", 10);
  EXPECT_THAT(
      Ids(Flatten(scheduler_.TakeDispatches())),
      ElementsAre(absl::StrCat(echoes, ":0@1"), absl::StrCat(echoes, ":1@1"),
                  absl::StrCat(echoes, ":2@1")));
  // The worker's unused credits stay its own: a resizer without credits
  // gets nothing, one with a credit gets one task.
  const WorkerKey resizer = KindWorker("resizer", {"resize"});
  EXPECT_THAT(scheduler_.TakeDispatches(), IsEmpty());
  scheduler_.AddCredits(resizer, 1);
  std::vector<Dispatch> dispatches = scheduler_.TakeDispatches();
  EXPECT_THAT(Ids(For(dispatches, resizer)),
              ElementsAre(absl::StrCat(waiting, ":0@1")));
  EXPECT_THAT(For(dispatches, w), IsEmpty());
}

TEST_F(SchedulerTest, JobInfoNamesTheKindsNoConnectedWorkerOffers) {
  const JobId job = Submit(
      {Of("resize", "r0"), Of("resize", "r1"), Echo("e"), Of("action", "a")});
  v1::JobInfo info = Job(job);
  ASSERT_EQ(info.unserved_size(), 3);
  EXPECT_EQ(info.unserved(0).kind(), "action");
  EXPECT_EQ(info.unserved(0).tasks(), 1u);
  EXPECT_EQ(info.unserved(1).kind(), "echo");
  EXPECT_EQ(info.unserved(2).kind(), "resize");
  EXPECT_EQ(info.unserved(2).tasks(), 2u);
  // Offered, even without credits: not unserved any more.
  const WorkerKey w = KindWorker("w", {"echo", "resize"});
  info = Job(job);
  ASSERT_EQ(info.unserved_size(), 1);
  EXPECT_EQ(info.unserved(0).kind(), "action");
  // A worker that leaves takes its kinds with it.
  scheduler_.RemoveWorker(w);
  EXPECT_EQ(Job(job).unserved_size(), 3);
}

TEST_F(SchedulerTest, RetriedTasksWaitForAWorkerOfTheirKind) {
  const JobId job = Submit({Of("resize", "r0"), Echo("e0")});
  const WorkerKey a = KindWorker("a", {"resize", "echo"}, 2);
  ASSERT_THAT(Flatten(scheduler_.TakeDispatches()), SizeIs(2));
  scheduler_.RemoveWorker(a);
  clock_.Advance(absl::Seconds(10));  // Past the backoff.
  const WorkerKey echoer = KindWorker("echoer", {"echo"}, 5);
  EXPECT_THAT(Ids(For(scheduler_.TakeDispatches(), echoer)),
              ElementsAre(absl::StrCat(job, ":1@2")));
  const WorkerKey b = KindWorker("b", {"resize"}, 5);
  EXPECT_THAT(Ids(For(scheduler_.TakeDispatches(), b)),
              ElementsAre(absl::StrCat(job, ":0@2")));
}

TEST_F(SchedulerTest, FinishedKindsAreForgottenAndCountedInStats) {
  const JobId job = Submit({Of("resize", "r0")});
  const WorkerKey w = KindWorker("w", {"resize"}, 1);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(1));
  scheduler_.RecordResults(w, {ResultFor(got[0])});
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);
  scheduler_.RemoveWorker(w);
  const SchedulerStats stats = scheduler_.Stats();
  ASSERT_EQ(stats.finished.count("resize"), 1u);
  EXPECT_EQ(stats.finished.at("resize")[v1::TASK_STATE_OK], 1u);
  // The kind is in use again by a new job.
  const JobId again = Submit({Of("resize", "r1")});
  EXPECT_EQ(Job(again).unserved(0).kind(), "resize");
}

v1::Task ByIndex(uint32_t kind_index, std::string text) {
  v1::Task task;
  task.set_kind_index(kind_index);
  task.set_text(std::move(text));
  return task;
}

TEST_F(SchedulerTest, AJobNamesKindsByIndexInItsTableOrByName) {
  // The table's order is the job's own; "resize" also by name.
  absl::StatusOr<JobId> job = scheduler_.SubmitJob(
      {ByIndex(1, "r0"), ByIndex(0, "e0"), Of("resize", "r1")},
      {"echo", "resize"});
  ASSERT_TRUE(job.ok()) << job.status();
  const WorkerKey resizer = KindWorker("resizer", {"resize"}, 10);
  const WorkerKey echoer = KindWorker("echoer", {"echo"}, 10);
  std::vector<Dispatch> dispatches = scheduler_.TakeDispatches();
  EXPECT_THAT(Texts(For(dispatches, resizer)), ElementsAre("r0", "r1"));
  EXPECT_THAT(Texts(For(dispatches, echoer)), ElementsAre("e0"));
}

TEST_F(SchedulerTest, ANameWinsOverAnIndex) {
  v1::Task named = ByIndex(7, "r");  // Past the table: not used.
  named.set_kind("resize");
  ASSERT_TRUE(scheduler_.SubmitJob({named}, {"echo"}).ok());
  const WorkerKey resizer = KindWorker("resizer", {"resize"}, 1);
  EXPECT_THAT(Texts(For(scheduler_.TakeDispatches(), resizer)),
              ElementsAre("r"));
}

TEST_F(SchedulerTest, AKindIndexPastTheTableIsInvalidArgument) {
  absl::StatusOr<JobId> refused =
      scheduler_.SubmitJob({ByIndex(0, "a"), ByIndex(2, "b")}, {"echo", "x"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "task 1: kind_index 2 is past the job's kind table of 2 names");
  // No table: an index names nothing.
  refused = scheduler_.SubmitJob({ByIndex(0, "a")});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "task 0: kind name is empty, and the job has no kind table for "
            "its kind_index");
  // An empty name in the table is no name (a client's task without one).
  refused = scheduler_.SubmitJob({ByIndex(1, "a")}, {"echo", ""});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "task 0: kind name is empty");
  // A name from the table is checked as a name.
  refused = scheduler_.SubmitJob({ByIndex(0, "a")}, {"9lives"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("task 0: kind name"));
  // And a built-in kind's argument by its rules.
  v1::Task sleep = ByIndex(0, "");
  sleep.set_arg(-1);
  refused = scheduler_.SubmitJob({sleep}, {"sleep"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("is negative"));
  EXPECT_EQ(scheduler_.Stats().queued, 0u);
}

TEST_F(SchedulerTest, AssignmentsNameTheKindByItsIndexInTheWorkersHello) {
  Submit({Of("resize", "r"), Echo("e"), Of("action", "a")});
  // Not sorted, and with a repeat: the hello's own order counts.
  const WorkerKey w =
      KindWorker("w", {"resize", "echo", "resize", "action"}, 10);
  std::vector<v1::Assignment> got = For(scheduler_.TakeDispatches(), w);
  ASSERT_THAT(got, SizeIs(3));
  std::vector<std::pair<std::string, uint32_t>> kinds;
  for (const v1::Assignment& a : got) {
    EXPECT_THAT(a.task().kind(), IsEmpty());
    kinds.emplace_back(a.task().text(), a.task().kind_index());
  }
  EXPECT_THAT(kinds, ElementsAre(std::pair<std::string, uint32_t>("r", 0),
                                 std::pair<std::string, uint32_t>("e", 1),
                                 std::pair<std::string, uint32_t>("a", 3)));
}

class AcceptedKindsTest : public SchedulerTest {
 protected:
  AcceptedKindsTest()
      : SchedulerTest({.accepted_kinds = {"sleep", "echo", "resize"}}) {}
};

TEST_F(AcceptedKindsTest, OtherKindsAreInvalidArgumentNamingKindAndList) {
  absl::StatusOr<JobId> refused =
      scheduler_.SubmitJob({Echo("a"), Of("action", "1")});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "task 1: kind \"action\" is not accepted here (accepted: sleep, "
            "echo, resize)");
  EXPECT_TRUE(scheduler_.SubmitJob({Of("resize", "x")}).ok());
  EXPECT_EQ(scheduler_.Stats().queued, 1u);
  // Named by index, the same.
  refused = scheduler_.SubmitJob({ByIndex(0, "1")}, {"action"});
  EXPECT_EQ(refused.status().message(),
            "task 0: kind \"action\" is not accepted here (accepted: sleep, "
            "echo, resize)");
}

}  // namespace
}  // namespace qfarm::coordinator
