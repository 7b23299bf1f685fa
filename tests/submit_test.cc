// FarmClient::Submit (concurrent.futures) through the real binaries: many
// futures waiting at once hold no thread each, and each gets its result,
// also across a restart of the coordinator.
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/farm_client.h"
#include "common/logging.h"
#include "common/task_spec.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"

namespace qfarm::testing {
namespace {

using Future = std::future<absl::StatusOr<v1::TaskResult>>;

v1::Task Echo(const std::string& text) {
  absl::StatusOr<v1::Task> task = ParseTaskSpec("echo:" + text);
  QFARM_CHECK(task.ok()) << task.status();
  return *std::move(task);
}

// This process's threads, from /proc/self/status.
int Threads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    int n = 0;
    if (absl::ConsumePrefix(&rest, "Threads:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &n)) {
      return n;
    }
  }
  return -1;
}

class SubmitTest : public ::testing::Test {
 protected:
  // No worker at first: every job waits, and so does every future's watch.
  void SetUp() override {
    auto farm = LocalFarm::Start({}, {"--journal-sync=normal"});
    ASSERT_TRUE(farm.ok()) << farm.status();
    farm_ = *std::move(farm);
    client_ = client::FarmClient::Create(
        {.address = farm_->address(), .reconnect_for = absl::Seconds(60)});
  }

  void TearDown() override {
    if (farm_ == nullptr) return;
    absl::Status stopped = farm_->Stop();
    EXPECT_TRUE(stopped.ok()) << stopped;
  }

  void ExpectEchoes(std::vector<Future>& futures) {
    for (size_t i = 0; i < futures.size(); ++i) {
      absl::StatusOr<v1::TaskResult> result = futures[i].get();
      ASSERT_TRUE(result.ok()) << i << ": " << result.status();
      EXPECT_EQ(result->state(), v1::TASK_STATE_OK) << i;
      EXPECT_EQ(result->value(), absl::StrCat("task-", i)) << i;
    }
  }

  std::unique_ptr<LocalFarm> farm_;
  std::unique_ptr<client::FarmClient> client_;
};

// With a thread per Submit(), 300 waiting futures were 300 threads.
TEST_F(SubmitTest, WaitingFuturesHoldNoThreadEach) {
  constexpr int kTasks = 300;
  std::vector<Future> futures;
  futures.push_back(client_->Submit(Echo("task-0")));
  const int before = Threads();  // gRPC's own threads are up by now.
  for (int i = 1; i < kTasks; ++i) {
    futures.push_back(client_->Submit(Echo(absl::StrCat("task-", i))));
  }
  EXPECT_LT(Threads() - before, 30);
  ASSERT_TRUE(farm_->StartWorker({.id = "worker-1", .mode = "async"}).ok());
  ExpectEchoes(futures);
}

TEST_F(SubmitTest, RefusalIsInTheFutureAtOnce) {
  v1::Task bad = Echo("x");
  bad.set_kind("no such kind!");
  Future future = client_->Submit(bad);
  ASSERT_EQ(future.wait_for(std::chrono::seconds(0)),
            std::future_status::ready);
  EXPECT_EQ(future.get().status().code(), absl::StatusCode::kInvalidArgument);
}

// The watches lose the coordinator and reconnect to the new one.
TEST_F(SubmitTest, FuturesSurviveACoordinatorRestart) {
  std::vector<Future> futures;
  for (int i = 0; i < 5; ++i) {
    futures.push_back(client_->Submit(Echo(absl::StrCat("task-", i))));
  }
  ASSERT_TRUE(farm_->RestartCoordinator().ok());
  ASSERT_TRUE(farm_->StartWorker({.id = "worker-1", .mode = "async"}).ok());
  ExpectEchoes(futures);
}

}  // namespace
}  // namespace qfarm::testing
