#include "coordinator/task_queue.h"

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

// Cancelled tasks, as the scheduler's job table would tell.
struct Live {
  absl::flat_hash_set<uint64_t> dropped;
  bool operator()(const TaskRef& ref) const {
    return !dropped.contains(ref.job * 1'000'000 + ref.index);
  }
};

// Every task of kind 0.
constexpr auto kEcho = [](uint32_t) -> KindId { return 0; };

template <typename LiveFn>
std::vector<TaskRef> PopAll(TaskQueue& queue, const LiveFn& live) {
  std::vector<TaskRef> out;
  while (queue.ready() > 0) out.push_back(queue.Pop(0, live));
  return out;
}

TEST(TaskQueueTest, FifoAcrossJobs) {
  TaskQueue queue;
  queue.PushJob(1, 2, kEcho);
  queue.PushJob(2, 1, kEcho);
  EXPECT_EQ(queue.queued(), 3u);
  EXPECT_EQ(queue.ready(), 3u);
  EXPECT_THAT(
      PopAll(queue, Live{}),
      testing::ElementsAre(TaskRef{1, 0}, TaskRef{1, 1}, TaskRef{2, 0}));
  EXPECT_EQ(queue.queued(), 0u);
}

TEST(TaskQueueTest, RetriesGoFirstOnceTheirBackoffEnds) {
  TaskQueue queue;
  queue.PushJob(1, 2, kEcho);
  EXPECT_FALSE(
      queue.PushRetry({9, 0}, 0, /*now_us=*/100, /*not_before_us=*/100));
  EXPECT_TRUE(queue.PushRetry({9, 1}, 0, 100, 300));
  EXPECT_TRUE(queue.PushRetry({9, 2}, 0, 100, 200));
  EXPECT_EQ(queue.queued(), 5u);
  EXPECT_EQ(queue.ready(), 3u);
  EXPECT_EQ(queue.next_due_us(), 200);
  std::vector<TaskRef> undelayed;
  auto undelay = [&](const TaskRef& ref) {
    undelayed.push_back(ref);
    return true;
  };
  queue.PromoteDue(250, undelay);
  EXPECT_THAT(undelayed, testing::ElementsAre(TaskRef{9, 2}));
  EXPECT_EQ(queue.next_due_us(), 300);
  queue.PromoteDue(300, undelay);
  EXPECT_EQ(queue.next_due_us(), INT64_MAX);
  EXPECT_THAT(PopAll(queue, Live{}),
              testing::ElementsAre(TaskRef{9, 0}, TaskRef{9, 2}, TaskRef{9, 1},
                                   TaskRef{1, 0}, TaskRef{1, 1}));
}

TEST(TaskQueueTest, DroppedTasksAreSkippedAndNotCounted) {
  TaskQueue queue;
  queue.PushJob(1, 3, kEcho);
  EXPECT_TRUE(queue.PushRetry({2, 0}, 0, 0, 50));
  Live live;
  live.dropped = {1'000'001, 2'000'000};
  queue.Drop(0, /*delayed=*/false);  // 1:1
  queue.Drop(0, /*delayed=*/true);   // 2:0
  EXPECT_EQ(queue.queued(), 2u);
  EXPECT_EQ(queue.ready(), 2u);
  // A cancelled delayed task is dropped when it comes due.
  queue.PromoteDue(100, [&](const TaskRef& ref) { return live(ref); });
  EXPECT_EQ(queue.ready(), 2u);
  EXPECT_THAT(PopAll(queue, live),
              testing::ElementsAre(TaskRef{1, 0}, TaskRef{1, 2}));
}

TEST(TaskQueueTest, CompactsOnceStaleOutnumberLive) {
  TaskQueue queue;
  queue.PushJob(1, 3000, kEcho);
  queue.PushJob(2, 2, kEcho);
  Live live;
  for (uint32_t i = 0; i < 3000; ++i) {
    live.dropped.insert(1'000'000 + i);
    queue.Drop(0, false);
  }
  int asked = 0;
  queue.MaybeCompact([&](const TaskRef& ref) {
    ++asked;
    return live(ref);
  });
  EXPECT_EQ(asked, 3002);
  // Nothing stale is left: the live ones come at once.
  asked = 0;
  Live counting = live;
  EXPECT_THAT(PopAll(queue,
                     [&](const TaskRef& ref) {
                       ++asked;
                       return counting(ref);
                     }),
              testing::ElementsAre(TaskRef{2, 0}, TaskRef{2, 1}));
  EXPECT_EQ(asked, 2);
}

TEST(TaskQueueTest, OneQueuePerKind) {
  TaskQueue queue;
  // Job 1: kinds 0, 1, 0, 1; job 2: kind 2.
  queue.PushJob(1, 4, [](uint32_t i) -> KindId { return i % 2; });
  queue.PushJob(2, 2, [](uint32_t) -> KindId { return 2; });
  EXPECT_EQ(queue.queued(), 6u);
  EXPECT_EQ(queue.ready(0), 2u);
  EXPECT_EQ(queue.ready(1), 2u);
  EXPECT_EQ(queue.queued(2), 2u);
  EXPECT_EQ(queue.ready(7), 0u);
  // A worker of kind 2 is not held up by the older tasks of other kinds.
  EXPECT_EQ(queue.Pop(2, Live{}), (TaskRef{2, 0}));
  // Across kinds: FIFO by job, then index.
  const std::vector<KindId> both = {0, 1};
  std::vector<TaskRef> popped;
  while (queue.ready(0) + queue.ready(1) > 0) {
    popped.push_back(queue.Pop(both, Live{}));
  }
  EXPECT_THAT(popped, testing::ElementsAre(TaskRef{1, 0}, TaskRef{1, 1},
                                           TaskRef{1, 2}, TaskRef{1, 3}));
  EXPECT_EQ(queue.queued(), 1u);
  EXPECT_TRUE(queue.AnyQueued([](KindId kind) { return kind == 2; }));
  EXPECT_FALSE(queue.AnyQueued([](KindId kind) { return kind != 2; }));
}

TEST(TaskQueueTest, RetriesOfAnyKindGoFirstInTheOrderTheyCameDue) {
  TaskQueue queue;
  queue.PushJob(1, 2, [](uint32_t i) -> KindId { return i; });
  EXPECT_FALSE(queue.PushRetry({9, 0}, 1, 0, 0));
  EXPECT_FALSE(queue.PushRetry({8, 0}, 0, 0, 0));
  const std::vector<KindId> both = {0, 1};
  EXPECT_EQ(queue.Pop(both, Live{}), (TaskRef{9, 0}));
  EXPECT_EQ(queue.Pop(both, Live{}), (TaskRef{8, 0}));
  EXPECT_EQ(queue.Pop(both, Live{}), (TaskRef{1, 0}));
}

TEST(TaskQueueTest, StaleEntriesOfOneKindAreSkippedAcrossKinds) {
  TaskQueue queue;
  queue.PushJob(1, 3, [](uint32_t i) -> KindId { return i == 2 ? 1 : 0; });
  Live live;
  live.dropped = {1'000'000};
  queue.Drop(0, false);
  EXPECT_EQ(queue.Pop(std::vector<KindId>{0, 1}, live), (TaskRef{1, 1}));
  EXPECT_EQ(queue.Pop(std::vector<KindId>{0, 1}, live), (TaskRef{1, 2}));
  EXPECT_EQ(queue.queued(), 0u);
  // A kind without waiting tasks is forgotten, stale entries and all.
  queue.Forget(0);
  queue.PushJob(2, 1, kEcho);
  EXPECT_EQ(queue.Pop(0, Live{}), (TaskRef{2, 0}));
}

}  // namespace
}  // namespace qfarm::coordinator
