#include "coordinator/result_gate.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(ResultGateTest, ReleasesInTicketOrder) {
  ResultGate gate;
  const uint64_t t1 = gate.Issue();
  const uint64_t t2 = gate.Issue();
  const uint64_t t3 = gate.Issue();
  gate.Hold(t1, {7});
  gate.Hold(t2, {8, 7});
  gate.Hold(t3, {9});
  EXPECT_THAT(gate.Durable(t2), IsEmpty());  // t1 is not durable yet.
  EXPECT_EQ(gate.released(), 0u);
  EXPECT_THAT(gate.Durable(t1), ElementsAre(7, 8));
  EXPECT_EQ(gate.released(), t2);
  EXPECT_THAT(gate.Durable(t3), ElementsAre(9));
  EXPECT_EQ(gate.released(), t3);
  EXPECT_TRUE(gate.error().ok());
}

TEST(ResultGateTest, FailureHoldsEverythingBackAndSaysSo) {
  ResultGate gate;
  const uint64_t t1 = gate.Issue();
  const uint64_t t2 = gate.Issue();
  gate.Hold(t1, {3});
  gate.Hold(t2, {1});
  EXPECT_THAT(gate.Fail(absl::InternalError("disk full")), ElementsAre(1, 3));
  EXPECT_EQ(gate.error().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(gate.error().message(), testing::HasSubstr("disk full"));
  // The first failure is the one readers see.
  gate.Fail(absl::InternalError("later"));
  EXPECT_THAT(gate.error().message(), testing::HasSubstr("disk full"));
}

}  // namespace
}  // namespace qfarm::coordinator
