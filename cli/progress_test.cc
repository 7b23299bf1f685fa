#include "cli/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "absl/synchronization/notification.h"

namespace qfarm::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ProgressTest, GroupsThousands) {
  EXPECT_EQ(GroupThousands(0), "0");
  EXPECT_EQ(GroupThousands(999), "999");
  EXPECT_EQ(GroupThousands(1000), "1,000");
  EXPECT_EQ(GroupThousands(1234567), "1,234,567");
  EXPECT_EQ(GroupThousands(18446744073709551615u),
            "18,446,744,073,709,551,615");
}

TEST(ProgressTest, ShortDurations) {
  EXPECT_EQ(ShortDuration(absl::Milliseconds(412)), "0.4s");
  EXPECT_EQ(ShortDuration(absl::Seconds(11)), "11s");
  EXPECT_EQ(ShortDuration(absl::Seconds(123)), "2m03s");
  EXPECT_EQ(ShortDuration(absl::Seconds(3900)), "1h05m");
  EXPECT_EQ(ShortDuration(absl::Hours(76)), "3d04h");
  EXPECT_EQ(ShortDuration(-absl::Seconds(3)), "0.0s");
}

TEST(ProgressTest, TheIssuesLine) {
  const ProgressCounts counts{
      .total = 10'000, .ok = 1'200, .failed = 34, .running = 96};
  EXPECT_EQ(FormatProgress("[job 12]", counts, 812),
            "[job 12] 1,234/10,000  ok 1,200  failed 34  running 96  812/s  "
            "eta 11s");
}

TEST(ProgressTest, OtherOutcomesOnlyWhenSomeAndNoEtaWithoutARate) {
  const ProgressCounts counts{
      .total = 10, .ok = 5, .timed_out = 1, .cancelled = 2};
  EXPECT_EQ(FormatProgress("[local]", counts, 0),
            "[local] 8/10  ok 5  failed 0  timed out 1  cancelled 2  0/s");
  const ProgressCounts done{.total = 3, .ok = 3, .running = 0};
  EXPECT_THAT(FormatProgress("[job 1]", done, 5), Not(HasSubstr("eta")));
}

TEST(ProgressTest, CountsEachOutcome) {
  std::ostringstream out;
  ProgressLine line(&out, {.label = "[job 1]", .total = 4});
  line.Add(v1::TASK_STATE_OK);
  line.Add(v1::TASK_STATE_FAILED);
  line.Add(v1::TASK_STATE_TIMED_OUT);
  line.Add(v1::TASK_STATE_CANCELLED);
  line.Stop();
  const ProgressCounts counts = line.Counts();
  EXPECT_EQ(counts.ok, 1u);
  EXPECT_EQ(counts.failed, 1u);
  EXPECT_EQ(counts.timed_out, 1u);
  EXPECT_EQ(counts.cancelled, 1u);
  EXPECT_EQ(counts.done(), 4u);
}

TEST(ProgressTest, StopsAtOnceAndErasesWhatItDrew) {
  std::ostringstream out;
  {
    // Asked for its running tasks before a draw (at most once a second):
    // once it has seen the result, that draw shows it.
    absl::Notification drew;
    ProgressLine line(
        &out,
        {.label = "[job 1]",
         .total = 10,
         .running =
             [&drew](const ProgressCounts& counts) -> std::optional<uint64_t> {
           if (counts.done() == 1 && !drew.HasBeenNotified()) drew.Notify();
           return 3;
         }});
    line.Add(v1::TASK_STATE_OK);
    drew.WaitForNotification();
    line.Stop();
    line.Stop();  // Idempotent.
  }
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("\r[job 1] 1/10  ok 1  failed 0  running 3"));
  // The last bytes erase the line.
  ASSERT_GE(text.size(), 4u);
  EXPECT_EQ(text.substr(text.size() - 4), "\r\x1b[K");
}

TEST(ProgressTest, LeavesNothingBehindWhenStoppedEarly) {
  std::ostringstream out;
  ProgressLine line(&out, {.label = "[job 1]", .total = 10});
  line.Stop();
  // Nothing, or (when this thread was held up past a redraw) a line then
  // its erase.
  const std::string text = out.str();
  if (!text.empty()) {
    ASSERT_GE(text.size(), 4u);
    EXPECT_EQ(text.substr(text.size() - 4), "\r\x1b[K");
  }
}

TEST(ProgressTest, ALineIsCutToTheTerminalsWidth) {
  std::ostringstream out;
  absl::Notification drew;
  {
    ProgressLine line(
        &out,
        {.label = "[job 1]",
         .total = 10,
         .running = [&drew](const ProgressCounts&) -> std::optional<uint64_t> {
           drew.Notify();
           return 3;
         },
         .columns = 12});
    drew.WaitForNotification();
  }  // Stop() waits for the draw that follows the ask.
  // "\r" + 11 characters + "\x1b[K": never as wide as the terminal.
  EXPECT_THAT(out.str(), HasSubstr("\r[job 1] 0/1\x1b[K"));
  EXPECT_THAT(out.str(), Not(HasSubstr("0/10")));
}

TEST(ProgressTest, WithLineErasedWritesOnACleanLine) {
  std::ostringstream out;
  absl::Notification drew;
  ProgressLine line(
      &out,
      {.label = "[job 1]",
       .total = 10,
       .running = [&drew](const ProgressCounts&) -> std::optional<uint64_t> {
         drew.Notify();
         return std::nullopt;
       }});
  drew.WaitForNotification();
  line.WithLineErased([&out] { out << "a result\n"; });
  line.Stop();
  const std::string text = out.str();
  // Whatever was drawn is erased right before the result.
  const size_t result = text.find("a result\n");
  ASSERT_NE(result, std::string::npos) << text;
  if (text.find("[job 1]") < result) {
    EXPECT_EQ(text.substr(result - 4, 4), "\r\x1b[K") << text;
  }
}

}  // namespace
}  // namespace qfarm::client
