// The Scheduler under threads and at scale.
#include "coordinator/scheduler_test_util.h"

namespace qfarm::coordinator {
namespace {

// --- Threads and scale ------------------------------------------------------

TEST_F(SchedulerTest, RecycledAssignmentsAreFilledAgain) {
  JobId a = Submit({Echo("first"), Echo(std::string(1000, 'x'))});
  WorkerKey w = Worker("w1", 2);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(1));
  ASSERT_THAT(d[0].assignments, SizeIs(2));
  const v1::Assignment* short_text = &d[0].assignments[0];
  scheduler_.RecycleAssignments(&d[0].assignments);
  EXPECT_THAT(d[0].assignments, IsEmpty());

  JobId b = Submit({EchoWithAttempts("second", 2), Echo("third")});
  scheduler_.AddCredits(w, 2);
  d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(1));
  // The spare with the short text is reused; the long one was not kept.
  EXPECT_THAT(Ids(d[0].assignments),
              ElementsAre(absl::StrCat(b, ":0@1"), absl::StrCat(b, ":1@1")));
  EXPECT_EQ(&d[0].assignments[0], short_text);
  EXPECT_EQ(d[0].assignments[0].task().SerializeAsString(),
            AsSent(EchoWithAttempts("second", 2), 1).SerializeAsString());
  EXPECT_EQ(d[0].assignments[1].task().SerializeAsString(),
            AsSent(Echo("third"), 1).SerializeAsString());
  EXPECT_NE(a, b);
}

// Every field of v1::Task, set by reflection (so a field added later is
// covered), reaches the assignment, fresh or recycled from another task;
// the kind as its index in the worker's hello.
TEST_F(SchedulerTest, AssignmentsCarryEveryFieldOfTheTask) {
  auto every_field = [](int seed) {
    v1::Task task;
    const google::protobuf::Descriptor* descriptor = task.GetDescriptor();
    const google::protobuf::Reflection* reflection = task.GetReflection();
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* field = descriptor->field(i);
      EXPECT_FALSE(field->is_repeated()) << field->name();
      const int value = seed * 10 + i + 1;
      switch (field->cpp_type()) {
        case google::protobuf::FieldDescriptor::CPPTYPE_STRING:
          reflection->SetString(&task, field,
                                absl::StrCat(field->name(), value));
          break;
        case google::protobuf::FieldDescriptor::CPPTYPE_INT64:
          reflection->SetInt64(&task, field, value);
          break;
        case google::protobuf::FieldDescriptor::CPPTYPE_UINT32:
          reflection->SetUInt32(&task, field, static_cast<uint32_t>(value));
          break;
        default:
          ADD_FAILURE() << "a field of a type this test does not set: "
                        << field->name();
      }
    }
    return task;
  };
  const v1::Task first = every_field(1);
  const v1::Task second = every_field(2);
  Submit({first});
  WorkerKey w = KindWorker("w1", {first.kind(), second.kind(), "echo"}, 1);
  std::vector<Dispatch> d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(1));
  ASSERT_THAT(d[0].assignments, SizeIs(1));
  EXPECT_EQ(d[0].assignments[0].task().SerializeAsString(),
            AsSent(first, 0).SerializeAsString());
  scheduler_.RecycleAssignments(&d[0].assignments);
  Submit({second, Echo("third")});
  scheduler_.AddCredits(w, 2);
  d = scheduler_.TakeDispatches();
  ASSERT_THAT(d, SizeIs(1));
  ASSERT_THAT(d[0].assignments, SizeIs(2));
  EXPECT_EQ(d[0].assignments[0].task().SerializeAsString(),
            AsSent(second, 1).SerializeAsString());
  EXPECT_EQ(d[0].assignments[1].task().SerializeAsString(),
            AsSent(Echo("third"), 2).SerializeAsString());
}

TEST_F(SchedulerTest, ViewResultsSeesTheRecordedResultsWithoutCopies) {
  JobId job = Submit(Echoes(3));
  WorkerKey w = Worker("w1", 3);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(3));
  scheduler_.RecordResults(w, {ResultFor(got[2]), ResultFor(got[0])});

  absl::StatusOr<ResultsView> view = scheduler_.ViewResults(job, 0, 10);
  ASSERT_TRUE(view.ok());
  ASSERT_THAT(view->results, SizeIs(2));
  EXPECT_EQ(view->next_cursor, 2u);
  EXPECT_FALSE(view->finished);
  absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->results, SizeIs(2));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(view->results[i]->SerializeAsString(),
              page->results[i].SerializeAsString());
  }
  const v1::TaskResult* first = view->results[0];
  const std::string first_bytes = first->SerializeAsString();

  // Later results leave the ones handed out where they were, unchanged.
  scheduler_.RecordResults(w, {ResultFor(got[1])});
  view = scheduler_.ViewResults(job, 0, 10);
  ASSERT_TRUE(view.ok());
  ASSERT_THAT(view->results, SizeIs(3));
  EXPECT_EQ(view->results[0], first);
  EXPECT_EQ(first->SerializeAsString(), first_bytes);
  EXPECT_EQ(view->results[2]->index(), 1u);
  EXPECT_TRUE(view->finished);

  view = scheduler_.ViewResults(job, 3, 10);
  ASSERT_TRUE(view.ok());
  EXPECT_THAT(view->results, IsEmpty());
  EXPECT_TRUE(view->finished);
  EXPECT_EQ(scheduler_.ViewResults(job + 1, 0, 10).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, RecordResultBatchTakesTheParsedMessages) {
  JobId job = Submit(Echoes(2));
  WorkerKey w = Worker("w1", 2);
  std::vector<v1::Assignment> got = Flatten(scheduler_.TakeDispatches());
  ASSERT_THAT(got, SizeIs(2));
  v1::ResultBatch batch;
  *batch.add_results() = ResultFor(got[1]);
  *batch.add_results() = ResultFor(got[1]);  // A duplicate: dropped.
  v1::TaskResult unknown = ResultFor(got[0]);
  unknown.set_job_id(job + 1);
  *batch.add_results() = unknown;
  *batch.add_results() = ResultFor(got[0]);
  const v1::TaskResult* recorded = &batch.results(0);

  std::string violation;
  EXPECT_THAT(
      scheduler_.RecordResultBatch(w, batch.mutable_results(), &violation),
      ElementsAre(job));
  EXPECT_THAT(batch.results(), IsEmpty());
  EXPECT_THAT(violation, HasSubstr("never given"));
  absl::StatusOr<ResultsView> view = scheduler_.ViewResults(job, 0, 10);
  ASSERT_TRUE(view.ok());
  ASSERT_THAT(view->results, SizeIs(2));
  // The message itself, now the scheduler's, with the coordinator's fields.
  EXPECT_EQ(view->results[0], recorded);
  EXPECT_EQ(view->results[0]->index(), 1u);
  EXPECT_EQ(view->results[0]->worker(), "w1");
  EXPECT_EQ(view->results[0]->queued_us(), kStartUs);
  EXPECT_EQ(view->results[1]->index(), 0u);
  EXPECT_TRUE(view->finished);
  EXPECT_EQ(Job(job).ok(), 2u);
}

// Clients submit while a worker thread takes, grants and reports; every task
// ends with exactly one result. Meant for ThreadSanitizer.
TEST_F(SchedulerTest, ConcurrentSubmitDispatchAndRecord) {
  constexpr int kJobs = 50;
  constexpr size_t kTasksPerJob = 40;
  WorkerKey w1 = Worker("w1", 16);
  WorkerKey w2 = Worker("w2", 16);
  std::vector<JobId> jobs(kJobs);
  std::thread client([&] {
    for (int i = 0; i < kJobs; ++i) {
      jobs[i] = scheduler_.SubmitJob(Echoes(kTasksPerJob)).value_or(0);
    }
  });
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i) {
      scheduler_.ListWorkers();
      (void)scheduler_.GetJob(1);
      (void)scheduler_.ReadResults(1, 0, 10);
    }
  });
  size_t done = 0;
  while (done < kJobs * kTasksPerJob) {
    for (const Dispatch& d : scheduler_.TakeDispatches()) {
      done += d.assignments.size();
      scheduler_.RecordResults(d.worker, ResultsFor(d.assignments));
      scheduler_.AddCredits(d.worker,
                            static_cast<uint32_t>(d.assignments.size()));
    }
    std::this_thread::yield();
  }
  client.join();
  reader.join();
  for (JobId job : jobs) {
    ASSERT_NE(job, 0u);
    EXPECT_EQ(Job(job).state(), v1::JOB_STATE_DONE);
  }
  uint64_t completed = 0;
  for (const v1::WorkerInfo& info : scheduler_.ListWorkers()) {
    completed += info.completed();
  }
  EXPECT_EQ(completed, kJobs * kTasksPerJob);
  (void)w1;
  (void)w2;
}

TEST_F(SchedulerTest, MillionTasksDispatchToTwoWorkers) {
  constexpr size_t kTasks = 1'000'000;
  JobId job = Submit(Echoes(kTasks));
  EXPECT_EQ(scheduler_.queued(), kTasks);
  WorkerKey w1 = Worker("w1");
  WorkerKey w2 = Worker("w2");
  size_t on_w1 = 0;
  size_t on_w2 = 0;
  size_t next_index = 0;
  while (scheduler_.queued() > 0) {
    scheduler_.AddCredits(w1, 2000);
    scheduler_.AddCredits(w2, 2000);
    std::vector<Dispatch> dispatches = scheduler_.TakeDispatches();
    ASSERT_FALSE(dispatches.empty());
    for (Dispatch& d : dispatches) {
      ASSERT_LE(d.assignments.size(), 1000u);
      (d.worker == w1 ? on_w1 : on_w2) += d.assignments.size();
      for (const v1::Assignment& a : d.assignments) {
        ASSERT_EQ(a.index(), next_index++);
      }
      scheduler_.RecordResults(d.worker, ResultsFor(d.assignments));
    }
  }
  EXPECT_EQ(on_w1 + on_w2, kTasks);
  EXPECT_EQ(on_w1, kTasks / 2);
  v1::JobInfo info = Job(job);
  EXPECT_EQ(info.state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(info.ok(), kTasks);
}

}  // namespace
}  // namespace qfarm::coordinator
