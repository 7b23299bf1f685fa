// The Session RPC (many jobs on one long-lived call) through the real
// binaries: a coordinator (journaled or --ephemeral, each test both) and an
// async worker, spoken to with FarmClient::OpenSession().
#include <csignal>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/farm_client.h"
#include "common/logging.h"
#include "common/task_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"
#include "tests/subprocess.h"

namespace qfarm::testing {
namespace {

using ::testing::HasSubstr;

v1::Task Spec(const std::string& spec) {
  absl::StatusOr<v1::Task> task = ParseTaskSpec(spec);
  QFARM_CHECK(task.ok()) << task.status();
  return *std::move(task);
}

v1::Task Echo(const std::string& text) { return Spec("echo:" + text); }
v1::Task Sleep(const std::string& duration) {
  return Spec("sleep:" + duration);
}

class SessionTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    // Journaled: the same acceptance and durability path as --journal-sync=
    // full, without an fsync per commit that a loaded disk makes slow.
    std::vector<std::string> flags = {"--journal-sync=normal"};
    if (!GetParam()) flags = {"--ephemeral"};
    auto farm = LocalFarm::Start({{.id = "worker-1", .mode = "async"}}, flags);
    ASSERT_TRUE(farm.ok()) << farm.status();
    farm_ = *std::move(farm);
    client_ = client::FarmClient::Create({.address = farm_->address()});
  }

  // Every process must exit 0 on SIGTERM: a hang, a crash, a leak (ASan)
  // or a race (TSan, exit 66) in shutting down fails the test. A test that
  // killed the coordinator itself sets coordinator_killed_.
  void TearDown() override {
    if (farm_ == nullptr || coordinator_killed_) return;
    absl::Status stopped = farm_->Stop();
    EXPECT_TRUE(stopped.ok()) << stopped;
  }

  std::unique_ptr<LocalFarm> farm_;
  std::unique_ptr<client::FarmClient> client_;
  bool coordinator_killed_ = false;
};

INSTANTIATE_TEST_SUITE_P(Journal, SessionTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Journaled" : "Ephemeral";
                         });

TEST_P(SessionTest, JobsOneAfterAnotherOnOneCall) {
  std::unique_ptr<client::FarmSession> session = client_->OpenSession();
  for (int i = 0; i < 50; ++i) {
    const std::string text = absl::StrCat("job-", i);
    absl::StatusOr<std::vector<v1::TaskResult>> results =
        session->Run({Echo(text), Echo(text + "-b")});
    ASSERT_TRUE(results.ok()) << results.status() << farm_->Logs();
    ASSERT_EQ(results->size(), 2u);
    EXPECT_EQ((*results)[0].value(), text);
    EXPECT_EQ((*results)[1].value(), text + "-b");
    EXPECT_EQ((*results)[1].index(), 1u);
    EXPECT_EQ((*results)[0].state(), v1::TASK_STATE_OK);
  }
  EXPECT_TRUE(session->Close().ok());
}

TEST_P(SessionTest, ResultsComeAsTheyCompleteWithTheJobId) {
  std::unique_ptr<client::FarmSession> session = client_->OpenSession();
  std::vector<uint32_t> order;
  uint64_t job_id = 0;
  absl::Status status = session->RunAsCompleted(
      {Sleep("300ms"), Echo("fast")},
      [&order, &job_id](v1::TaskResult&& r) {
        // The id comes first, before any result.
        EXPECT_NE(job_id, 0u);
        order.push_back(r.index());
      },
      [&job_id](uint64_t id) { job_id = id; });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_THAT(order, ::testing::ElementsAre(1u, 0u));
  ASSERT_NE(job_id, 0u);
  // The job is an ordinary one: its counters are there by id.
  absl::StatusOr<v1::JobInfo> info = client_->GetJob(job_id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(info->ok(), 2u);
}

TEST_P(SessionTest, ARefusedJobLeavesTheSessionOpen) {
  std::unique_ptr<client::FarmSession> session = client_->OpenSession();
  v1::Task bad = Echo("x");
  bad.set_kind("7seven");
  absl::StatusOr<std::vector<v1::TaskResult>> refused =
      session->Run({Echo("a"), bad});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("7seven"));
  EXPECT_EQ(session->Run({}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<v1::TaskResult>> after = session->Run({Echo("b")});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)[0].value(), "b");
  EXPECT_TRUE(session->Close().ok());
}

TEST_P(SessionTest, ThreadsShareOneSession) {
  std::unique_ptr<client::FarmSession> session = client_->OpenSession();
  constexpr int kThreads = 4;
  constexpr int kJobs = 40;
  std::vector<std::thread> threads;
  std::vector<int> good(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < kJobs; ++j) {
        const std::string text = absl::StrCat(t, "/", j);
        // Some jobs wait, so others overtake them on the stream.
        std::vector<v1::Task> tasks = {Echo(text)};
        if (j % 10 == 0) tasks.push_back(Sleep("20ms"));
        absl::StatusOr<std::vector<v1::TaskResult>> results =
            session->Run(tasks);
        if (results.ok() && results->size() == tasks.size() &&
            (*results)[0].value() == text) {
          ++good[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(good[t], kJobs) << "thread " << t;
  EXPECT_TRUE(session->Close().ok());
}

TEST_P(SessionTest, CoordinatorGoingAwayFailsTheWaitingJob) {
  coordinator_killed_ = true;
  std::unique_ptr<client::FarmSession> session = client_->OpenSession();
  ASSERT_TRUE(session->Run({Echo("warm")}).ok());
  // A job that cannot finish before the coordinator is gone.
  std::thread stopper([this] {
    // Once the worker runs the job (polling the coordinator's worker list),
    // the coordinator dies.
    for (int i = 0; i < 2000; ++i) {
      auto workers = client_->ListWorkers();
      if (workers.ok() && !workers->empty() && (*workers)[0].in_flight() > 0) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    farm_->coordinator()->Signal(SIGKILL);
  });
  absl::StatusOr<std::vector<v1::TaskResult>> lost =
      session->Run({Sleep("30s")});
  stopper.join();
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable)
      << lost.status();
  // Later jobs fail at once with the same.
  EXPECT_EQ(session->Run({Echo("late")}).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(SessionTokenTest, MissingTokenIsUnauthenticated) {
  TempDir dir;
  std::ofstream(dir.path() + "/client") << "client-token\n";
  auto farm = LocalFarm::Start(
      {{.id = "worker-1", .mode = "async"}},
      {"--client-token-file=" + dir.path() + "/client", "--ephemeral"},
      {"--token-file=" + dir.path() + "/client"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  auto anonymous = client::FarmClient::Create({.address = (*farm)->address()});
  std::unique_ptr<client::FarmSession> refused = anonymous->OpenSession();
  EXPECT_EQ(refused->Run({Echo("x")}).status().code(),
            absl::StatusCode::kUnauthenticated);
  auto known = client::FarmClient::Create(
      {.address = (*farm)->address(), .token = "client-token"});
  std::unique_ptr<client::FarmSession> session = known->OpenSession();
  absl::StatusOr<std::vector<v1::TaskResult>> ok = session->Run({Echo("x")});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)[0].value(), "x");
  EXPECT_TRUE(session->Close().ok());
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

}  // namespace
}  // namespace qfarm::testing
