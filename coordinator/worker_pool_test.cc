#include "coordinator/worker_pool.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

using ::testing::ElementsAre;

std::vector<WorkerKey> Keys(const std::vector<Worker*>& workers) {
  std::vector<WorkerKey> keys;
  for (const Worker* w : workers) keys.push_back(w->key);
  return keys;
}

TEST(WorkerPoolTest, KeysIncreaseAndNamesDefault) {
  WorkerPool pool;
  WorkerKey a = pool.Add({.worker_id = "a"}, {}, 10);
  WorkerKey b = pool.Add({}, {}, 20);
  EXPECT_LT(a, b);
  EXPECT_EQ(pool.Find(a)->desc.worker_id, "a");
  EXPECT_EQ(pool.Find(b)->desc.worker_id, absl::StrCat("worker-", b));
  EXPECT_EQ(pool.Find(b)->connected_us, 20);
  ASSERT_NE(pool.Remove(a), nullptr);
  EXPECT_EQ(pool.Find(a), nullptr);
  EXPECT_EQ(pool.Remove(a), nullptr);
  EXPECT_GT(pool.Add({}, {}, 30), b);  // Never reused.
}

TEST(WorkerPoolTest, SilentAfterTheTimeout) {
  WorkerPool pool;
  WorkerKey a = pool.Add({}, {}, 0);
  WorkerKey b = pool.Add({}, {}, 0);
  pool.Find(b)->heard_us = 50;
  EXPECT_THAT(pool.Silent(100, 100), ElementsAre());
  EXPECT_THAT(pool.Silent(101, 100), ElementsAre(a));
  EXPECT_THAT(pool.Silent(151, 100), ElementsAre(a, b));
}

TEST(WorkerPoolTest, TurnsRotateOverWorkersWithCredits) {
  WorkerPool pool;
  WorkerKey a = pool.Add({}, {}, 0);
  WorkerKey b = pool.Add({}, {}, 0);
  WorkerKey c = pool.Add({}, {}, 0);
  EXPECT_THAT(Keys(pool.TakeTurns()), ElementsAre());
  for (WorkerKey k : {a, b, c}) pool.Find(k)->credits = 1;
  EXPECT_THAT(Keys(pool.TakeTurns()), ElementsAre(a, b, c));
  EXPECT_THAT(Keys(pool.TakeTurns()), ElementsAre(b, c, a));
  pool.Find(c)->credits = 0;
  EXPECT_THAT(Keys(pool.TakeTurns()), ElementsAre(a, b));
}

}  // namespace
}  // namespace qfarm::coordinator
