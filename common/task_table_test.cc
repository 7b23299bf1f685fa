#include "common/task_table.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qfarm/v1/farm.pb.h"

namespace qfarm {
namespace {

using ::testing::ElementsAre;

v1::Task Named(std::string kind, std::string text) {
  v1::Task task;
  task.set_kind(std::move(kind));
  task.set_text(std::move(text));
  return task;
}

TEST(TaskTableTest, EachNameOnceInOrderOfFirstUseAndTasksByIndex) {
  v1::SubmitJobRequest request;
  AppendTasksByKindIndex(
      {Named("echo", "a"), Named("echo", "b"), Named("resize", "c"),
       Named("echo", "d"), Named("action", "e")},
      *request.mutable_tasks(), *request.mutable_kinds());
  EXPECT_THAT(request.kinds(), ElementsAre("echo", "resize", "action"));
  std::vector<std::pair<std::string, uint32_t>> got;
  for (const v1::Task& task : request.tasks()) {
    EXPECT_TRUE(task.kind().empty());
    got.emplace_back(task.text(), task.kind_index());
  }
  using P = std::pair<std::string, uint32_t>;
  EXPECT_THAT(
      got, ElementsAre(P("a", 0), P("b", 0), P("c", 1), P("d", 0), P("e", 2)));
  // A second batch into the same request extends the same table.
  AppendTasksByKindIndex({Named("resize", "f"), Named("cpu", "g")},
                         *request.mutable_tasks(), *request.mutable_kinds());
  EXPECT_THAT(request.kinds(), ElementsAre("echo", "resize", "action", "cpu"));
  EXPECT_EQ(request.tasks(5).kind_index(), 1u);
  EXPECT_EQ(request.tasks(6).kind_index(), 3u);
}

TEST(TaskTableTest, ACopyByIndexKeepsEveryOtherField) {
  v1::Task from = Named("sleep", "t");
  from.set_arg(5);
  from.set_data("d");
  from.set_timeout_ms(7);
  from.set_max_attempts(2);
  // A reused task with other values.
  v1::Task to = Named("echo", "old text");
  to.set_kind_index(9);
  CopyTaskByKindIndex(from, 3, to);
  v1::Task want = from;
  want.clear_kind();
  want.set_kind_index(3);
  EXPECT_EQ(to.SerializeAsString(), want.SerializeAsString());
}

TEST(TaskTableTest, ATaskWithoutAKindNameGetsTheEmptyName) {
  // Not the table's first kind: the coordinator refuses the empty name.
  v1::Task nameless;
  nameless.set_kind_index(4);
  v1::SubmitJobRequest request;
  AppendTasksByKindIndex({Named("echo", "a"), nameless},
                         *request.mutable_tasks(), *request.mutable_kinds());
  EXPECT_THAT(request.kinds(), ElementsAre("echo", ""));
  EXPECT_EQ(request.tasks(1).kind_index(), 1u);
}

}  // namespace
}  // namespace qfarm
