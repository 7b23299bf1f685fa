#include "bench/runners.h"

#include "gtest/gtest.h"

namespace qfarm::bench {
namespace {

v1::TaskResult Result(uint32_t index, v1::TaskState state, int64_t started,
                      int64_t finished) {
  v1::TaskResult r;
  r.set_index(index);
  r.set_state(state);
  r.set_started_us(started);
  r.set_finished_us(finished);
  return r;
}

TEST(TaskLogTest, LatenciesCountFromSubmission) {
  TaskLog log(4, 1'000);
  log.Add(Result(0, v1::TASK_STATE_OK, 1'100, 1'200), 1'300);
  log.Add(Result(1, v1::TASK_STATE_OK, 1'100, 1'400), 1'500);
  log.Add(Result(2, v1::TASK_STATE_FAILED, 1'150, 1'450), 1'500);
  // Submitted on its own (one task at a time).
  log.Add(Result(3, v1::TASK_STATE_OK, 2'000, 2'010), 2'020, 1'990);
  // A duplicate and an index out of range are ignored.
  log.Add(Result(1, v1::TASK_STATE_OK, 1, 2), 9'999);
  log.Add(Result(9, v1::TASK_STATE_OK, 1, 2), 9'999);
  EXPECT_EQ(log.received(), 4);
  Row row;
  log.Fill(&row);
  EXPECT_EQ(row.ok, 3);
  // Latencies 300, 500, 500, 30: p50 is the 2nd smallest, p99 the largest.
  EXPECT_EQ(row.latency_p50_us, 300);
  EXPECT_EQ(row.latency_p99_us, 500);
  EXPECT_EQ(row.max_concurrency, 3);
}

TEST(TaskLogTest, NotesTheMedianHops) {
  TaskLog log(2, 0);
  log.RecordHops();
  for (uint32_t i = 0; i < 2; ++i) {
    v1::TaskResult r = Result(i, v1::TASK_STATE_OK, 1'100, 1'110);
    r.set_queued_us(1'040);
    r.set_dispatched_us(1'050);
    log.Add(r, 1'200, 1'000);
  }
  Row row;
  log.Fill(&row);
  EXPECT_EQ(row.note,
            "median hops: client->coordinator 40us, queue 10us, ->worker "
            "start 50us, run 10us, ->client 90us");
}

TEST(TaskLogTest, MissingResultsDoNotCount) {
  TaskLog log(3, 0);
  log.AddTimes(0, {10, 20}, 25, true);
  Row row;
  log.Fill(&row);
  EXPECT_EQ(log.received(), 1);
  EXPECT_EQ(row.ok, 1);
  EXPECT_EQ(row.latency_p50_us, 25);
  EXPECT_EQ(row.max_concurrency, 1);
}

}  // namespace
}  // namespace qfarm::bench
