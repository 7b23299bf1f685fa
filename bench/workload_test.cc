#include "bench/workload.h"

#include "gtest/gtest.h"

namespace qfarm::bench {
namespace {

TEST(WorkloadTest, SeedDefaultsAndQuick) {
  absl::StatusOr<Workload> seed = MakeWorkload({.name = "seed"});
  ASSERT_TRUE(seed.ok());
  EXPECT_EQ(seed->tasks, 10);
  EXPECT_EQ(seed->sleep, absl::Seconds(1));
  EXPECT_EQ(seed->Title(), "seed: 10 x sleep 1s");
  absl::StatusOr<Workload> quick =
      MakeWorkload({.name = "seed", .quick = true});
  ASSERT_TRUE(quick.ok());
  EXPECT_EQ(quick->sleep, absl::Milliseconds(50));
}

TEST(WorkloadTest, RefusesUnknownNamesAndBadValues) {
  EXPECT_EQ(MakeWorkload({.name = "nope"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(MakeWorkload({.name = "scale", .tasks = -1}).ok());
  EXPECT_FALSE(
      MakeWorkload({.name = "scale", .sleep = absl::Milliseconds(-1)}).ok());
}

TEST(WorkloadTest, SoakDefaultsAndItsOptions) {
  absl::StatusOr<Workload> soak = MakeWorkload({.name = "soak"});
  ASSERT_TRUE(soak.ok()) << soak.status();
  EXPECT_EQ(soak->jobs, 200);
  EXPECT_EQ(soak->tasks, 100'000);
  EXPECT_EQ(soak->retain_finished, absl::Seconds(5));
  EXPECT_EQ(soak->Title(),
            "soak: 200 jobs x 100000 echo tasks, --retain-finished=5s");
  soak = MakeWorkload({.name = "soak",
                       .tasks = 100,
                       .jobs = 3,
                       .retain_finished = absl::ZeroDuration()});
  ASSERT_TRUE(soak.ok()) << soak.status();
  EXPECT_EQ(soak->jobs, 3);
  EXPECT_EQ(soak->retain_finished, absl::ZeroDuration());
  std::vector<v1::Task> tasks = BuildTasks(*soak, "");
  ASSERT_EQ(tasks.size(), 100u);
  EXPECT_EQ(tasks[0].kind(), "echo");
  // --jobs belongs to soak; a negative retention is refused.
  EXPECT_FALSE(MakeWorkload({.name = "echo", .jobs = 3}).ok());
  EXPECT_FALSE(MakeWorkload({.name = "soak", .jobs = -1}).ok());
  EXPECT_FALSE(
      MakeWorkload({.name = "soak", .retain_finished = absl::Seconds(-1)})
          .ok());
  EXPECT_EQ(DefaultWorkers(*soak, "async", 8), 2);
}

TEST(WorkloadTest, BuildsTheTasks) {
  Workload scale = *MakeWorkload({.name = "scale", .tasks = 3});
  std::vector<v1::Task> tasks = BuildTasks(scale, "");
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks[0].kind(), "sleep");
  EXPECT_EQ(tasks[0].arg(), 100);

  Workload http = *MakeWorkload({.name = "http", .tasks = 2});
  tasks = BuildTasks(http, "http://127.0.0.1:8080");
  EXPECT_EQ(tasks[1].text(), "http://127.0.0.1:8080/delay/100");

  Workload mixed = *MakeWorkload({.name = "mixed", .tasks = 5});
  tasks = BuildTasks(mixed, "");
  EXPECT_EQ(mixed.io_tasks, 3);
  EXPECT_EQ(mixed.cpu_tasks, 2);
  EXPECT_EQ(tasks[0].kind(), "sleep");
  EXPECT_EQ(tasks[1].kind(), "cpu");
}

TEST(IdealTest, SleepWorkloadsAreWavesOfSlots) {
  Workload seed = *MakeWorkload({.name = "seed"});
  EXPECT_DOUBLE_EQ(IdealSeconds(seed, 10, 2), 1.0);
  EXPECT_DOUBLE_EQ(IdealSeconds(seed, 100, 2), 1.0);
  EXPECT_DOUBLE_EQ(IdealSeconds(seed, 1, 2), 10.0);
  // The seed's defaults: a process pool of 2 takes 5 waves, a thread pool
  // of 6 two.
  EXPECT_DOUBLE_EQ(IdealSeconds(seed, 2, 2), 5.0);
  EXPECT_DOUBLE_EQ(IdealSeconds(seed, 6, 2), 2.0);
  Workload scale = *MakeWorkload({.name = "scale", .tasks = 100'000});
  EXPECT_DOUBLE_EQ(IdealSeconds(scale, 100'000, 2), 0.1);
  EXPECT_DOUBLE_EQ(IdealSeconds(scale, 1'000, 2), 10.0);
  EXPECT_DOUBLE_EQ(IdealSeconds(scale, 0, 2), 0);
}

TEST(IdealTest, CpuIsBoundByCores) {
  Workload cpu = *MakeWorkload({.name = "cpu", .tasks = 10});
  cpu.cpu_task_s = 0.01;
  EXPECT_DOUBLE_EQ(IdealSeconds(cpu, 1, 2), 0.1);
  EXPECT_DOUBLE_EQ(IdealSeconds(cpu, 2, 2), 0.05);
  EXPECT_DOUBLE_EQ(IdealSeconds(cpu, 1000, 2), 0.05);
}

TEST(IdealTest, MixedIsTheLongerPart) {
  Workload mixed = *MakeWorkload({.name = "mixed", .tasks = 20});
  mixed.cpu_task_s = 0.05;
  // 10 sleeps of 0.1 s on 10 slots: 0.1 s; 10 cpu tasks on 2 cores: 0.25 s.
  EXPECT_DOUBLE_EQ(IdealSeconds(mixed, 10, 2), 0.25);
  mixed.cpu_task_s = 0.001;
  EXPECT_DOUBLE_EQ(IdealSeconds(mixed, 10, 2), 0.1);
}

TEST(IdealTest, OverheadWorkloadsHaveNone) {
  EXPECT_EQ(IdealSeconds(*MakeWorkload({.name = "echo"}), 4, 2), 0);
  EXPECT_EQ(IdealSeconds(*MakeWorkload({.name = "latency"}), 1, 2), 0);
  EXPECT_EQ(IdealSeconds(*MakeWorkload({.name = "queue"}), 1, 2), 0);
}

TEST(MethodsTest, ParsesEntriesAndGroups) {
  absl::StatusOr<std::vector<Method>> methods =
      ParseMethods("local:async, farm:serialx10,farm:thread*2,py:uvloop");
  ASSERT_TRUE(methods.ok()) << methods.status();
  ASSERT_EQ(methods->size(), 4u);
  EXPECT_EQ((*methods)[0].Label(), "local:async");
  EXPECT_EQ((*methods)[1].Label(), "farm:serial x10");
  EXPECT_EQ((*methods)[2].Label(), "farm:thread x2");
  EXPECT_EQ((*methods)[3].Label(), "py:uvloop");
  EXPECT_EQ(ParseMethods("local")->size(), 4u);
  EXPECT_EQ(ParseMethods("all")->size(), 8u);
  EXPECT_EQ(ParseMethods("py")->size(), 5u);
  EXPECT_EQ(DefaultMethods().size(), 8u);
}

TEST(MethodsTest, RefusesBadEntries) {
  for (const char* bad :
       {"", "local", "local:fast", "farm:asyncx0", "farm:asyncxx", "py:gevent",
        "cloud:async", "async"}) {
    if (std::string(bad) == "local") continue;  // A group.
    EXPECT_FALSE(ParseMethods(bad).ok()) << bad;
  }
}

TEST(SizingTest, Defaults) {
  Workload seed = *MakeWorkload({.name = "seed"});
  EXPECT_EQ(DefaultSlots(seed, "serial", 2), 1);
  EXPECT_EQ(DefaultSlots(seed, "thread", 2), 10);
  EXPECT_EQ(DefaultSlots(seed, "async", 2), 10);
  EXPECT_EQ(DefaultWorkers(seed, "serial", 2), 10);
  EXPECT_EQ(DefaultWorkers(seed, "async", 2), 1);
  Workload scale = *MakeWorkload({.name = "scale", .tasks = 100'000});
  EXPECT_EQ(DefaultSlots(scale, "thread", 2), 1'000);
  EXPECT_EQ(DefaultSlots(scale, "async", 2), 100'000);
  Workload echo = *MakeWorkload({.name = "echo"});
  EXPECT_EQ(DefaultSlots(echo, "thread", 2), 2);
  EXPECT_EQ(DefaultWorkers(echo, "async", 2), 2);
}

}  // namespace
}  // namespace qfarm::bench
