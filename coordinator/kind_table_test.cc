#include "coordinator/kind_table.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::coordinator {
namespace {

TEST(KindTableTest, IdsLiveWhileReferencedAndAreReused) {
  KindTable table;
  absl::StatusOr<KindId> echo = table.Acquire("echo", 2, /*for_tasks=*/true);
  ASSERT_TRUE(echo.ok());
  EXPECT_EQ(*table.Acquire("echo", 1, true), *echo);
  absl::StatusOr<KindId> resize = table.Acquire("resize", 1, false);
  ASSERT_TRUE(resize.ok());
  EXPECT_NE(*resize, *echo);
  EXPECT_EQ(table.Find("resize"), *resize);
  EXPECT_EQ(table.name(*resize), "resize");
  EXPECT_EQ(table.size(), 2u);
  EXPECT_FALSE(table.Release(*echo, 2));
  EXPECT_TRUE(table.Release(*echo));  // The third reference.
  EXPECT_EQ(table.Find("echo"), kNoKind);
  // The forgotten id goes to the next new name.
  EXPECT_EQ(*table.Acquire("action", 1, true), *echo);
}

TEST(KindTableTest, FinishedCountsOutliveTheKind) {
  KindTable table;
  const KindId id = *table.Acquire("reverse", 1, true);
  table.CountFinished(id, v1::TASK_STATE_OK);
  table.CountFinished(id, v1::TASK_STATE_FAILED);
  EXPECT_TRUE(table.Release(id));
  const std::map<std::string, StateCounts> finished = table.Finished();
  ASSERT_EQ(finished.count("reverse"), 1u);
  EXPECT_EQ(finished.at("reverse")[v1::TASK_STATE_OK], 1u);
  EXPECT_EQ(finished.at("reverse")[v1::TASK_STATE_FAILED], 1u);
}

TEST(KindTableTest, TasksBringAtMostMaxTaskKinds) {
  KindTable table;
  for (size_t i = 0; i < KindTable::kMaxTaskKinds; ++i) {
    ASSERT_TRUE(table.Acquire(absl::StrCat("k", i), 1, true).ok()) << i;
  }
  absl::StatusOr<KindId> over = table.Acquire("one-more", 1, true);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  // Kinds in use are still taken, and workers' kinds always.
  EXPECT_TRUE(table.Acquire("k0", 1, true).ok());
  EXPECT_TRUE(table.Acquire("one-more", 1, false).ok());
}

}  // namespace
}  // namespace qfarm::coordinator
