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

template <typename LiveFn>
std::vector<TaskRef> PopAll(TaskQueue& queue, const LiveFn& live) {
  std::vector<TaskRef> out;
  while (queue.ready() > 0) out.push_back(queue.Pop(live));
  return out;
}

TEST(TaskQueueTest, FifoAcrossJobs) {
  TaskQueue queue;
  queue.PushJob(1, 2);
  queue.PushJob(2, 1);
  EXPECT_EQ(queue.queued(), 3u);
  EXPECT_EQ(queue.ready(), 3u);
  EXPECT_THAT(
      PopAll(queue, Live{}),
      testing::ElementsAre(TaskRef{1, 0}, TaskRef{1, 1}, TaskRef{2, 0}));
  EXPECT_EQ(queue.queued(), 0u);
}

TEST(TaskQueueTest, RetriesGoFirstOnceTheirBackoffEnds) {
  TaskQueue queue;
  queue.PushJob(1, 2);
  EXPECT_FALSE(queue.PushRetry({9, 0}, /*now_us=*/100, /*not_before_us=*/100));
  EXPECT_TRUE(queue.PushRetry({9, 1}, 100, 300));
  EXPECT_TRUE(queue.PushRetry({9, 2}, 100, 200));
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
  queue.PushJob(1, 3);
  EXPECT_TRUE(queue.PushRetry({2, 0}, 0, 50));
  Live live;
  live.dropped = {1'000'001, 2'000'000};
  queue.Drop(/*delayed=*/false);  // 1:1
  queue.Drop(/*delayed=*/true);   // 2:0
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
  queue.PushJob(1, 3000);
  queue.PushJob(2, 2);
  Live live;
  for (uint32_t i = 0; i < 3000; ++i) {
    live.dropped.insert(1'000'000 + i);
    queue.Drop(false);
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

}  // namespace
}  // namespace qfarm::coordinator
