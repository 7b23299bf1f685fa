// The worker stream's protocol over the real scheduler and router, with a
// fake channel that keeps what the coordinator sends.
#include "coordinator/worker_protocol.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

using ::testing::HasSubstr;

class FakeChannel final : public WorkerChannel {
 public:
  explicit FakeChannel(WorkerProtocol* protocol) : protocol_(protocol) {}
  void SendTasks(
      google::protobuf::RepeatedPtrField<v1::Assignment> batch) override {
    for (v1::Assignment& a : batch) given.push_back(std::move(a));
  }
  void SendCancel(JobId job) override { cancelled.push_back(job); }
  // As the stream does: ending it unregisters the worker.
  void Close(const absl::Status& status) override {
    closed = status;
    protocol_->OnEnd();
  }

  std::vector<v1::Assignment> given;
  std::vector<JobId> cancelled;
  std::optional<absl::Status> closed;

 private:
  WorkerProtocol* const protocol_;
};

v1::WorkerMessage Hello(uint32_t slots, uint32_t credits = 0,
                        const std::string& id = "w1") {
  v1::WorkerMessage message;
  message.mutable_hello()->set_worker_id(id);
  message.mutable_hello()->set_mode("thread");
  message.mutable_hello()->set_slots(slots);
  message.mutable_hello()->add_kinds("echo");
  message.set_credits(credits);
  return message;
}

v1::WorkerMessage Result(const v1::Assignment& a, uint32_t credits = 0) {
  v1::WorkerMessage message;
  v1::TaskResult* r = message.mutable_results()->add_results();
  r->set_job_id(a.job_id());
  r->set_index(a.index());
  r->set_attempt(a.attempt());
  r->set_state(v1::TASK_STATE_OK);
  r->set_value(a.task().text());
  message.set_credits(credits);
  return message;
}

class WorkerProtocolTest : public ::testing::Test {
 protected:
  WorkerProtocolTest()
      : scheduler_(&clock_, {.heartbeat_timeout = absl::Seconds(10)}),
        router_(&scheduler_),
        protocol_(&scheduler_, &router_, "ipv4:127.0.0.1:1"),
        channel_(std::make_shared<FakeChannel>(&protocol_)) {}

  absl::Status Send(v1::WorkerMessage message) {
    return protocol_.OnMessage(message,
                               [this](WorkerKey key, const std::string& id) {
                                 registered_.push_back({key, id});
                                 return channel_;
                               });
  }

  JobId Submit(int tasks) {
    std::vector<v1::Task> job(static_cast<size_t>(tasks));
    for (int i = 0; i < tasks; ++i) {
      job[static_cast<size_t>(i)].set_kind("echo");
      job[static_cast<size_t>(i)].set_text(absl::StrCat("t", i));
    }
    absl::StatusOr<JobId> id = scheduler_.SubmitJob(std::move(job));
    EXPECT_TRUE(id.ok()) << id.status();
    router_.Pump();
    return *id;
  }

  FakeClock clock_;
  Scheduler scheduler_;
  Router router_;
  WorkerProtocol protocol_;
  std::shared_ptr<FakeChannel> channel_;
  std::vector<std::pair<WorkerKey, std::string>> registered_;
};

TEST_F(WorkerProtocolTest, FirstMessageMustBeAHello) {
  v1::WorkerMessage credits;
  credits.set_credits(3);
  absl::Status status = Send(credits);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("hello"));
  EXPECT_TRUE(scheduler_.ListWorkers().empty());
  EXPECT_FALSE(protocol_.OnEnd());  // Nothing to remove.
}

TEST_F(WorkerProtocolTest, SlotsMustBeInRange) {
  EXPECT_EQ(Send(Hello(0)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Send(Hello(kMaxWorkerSlots + 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(registered_.empty());
  EXPECT_TRUE(scheduler_.ListWorkers().empty());
}

TEST_F(WorkerProtocolTest, HelloRegistersOnceAndASecondIsRefused) {
  ASSERT_TRUE(Send(Hello(4, 0, "")).ok());
  ASSERT_EQ(registered_.size(), 1u);
  EXPECT_EQ(registered_[0].second,
            absl::StrCat("worker-", registered_[0].first));
  EXPECT_EQ(protocol_.worker_id(), registered_[0].second);
  ASSERT_EQ(scheduler_.ListWorkers().size(), 1u);
  EXPECT_EQ(scheduler_.ListWorkers()[0].slots(), 4u);
  EXPECT_EQ(Send(Hello(4)).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(registered_.size(), 1u);
}

TEST_F(WorkerProtocolTest, CreditsBringTasksAndResultsAreRecorded) {
  const JobId job = Submit(3);
  ASSERT_TRUE(Send(Hello(2, 2)).ok());
  ASSERT_EQ(channel_->given.size(), 2u);
  // A result and a credit back: the third task comes.
  ASSERT_TRUE(Send(Result(channel_->given[0], 1)).ok());
  ASSERT_EQ(channel_->given.size(), 3u);
  ASSERT_TRUE(Send(Result(channel_->given[1])).ok());
  ASSERT_TRUE(Send(Result(channel_->given[2])).ok());
  // A duplicate is dropped quietly.
  ASSERT_TRUE(Send(Result(channel_->given[2])).ok());
  absl::StatusOr<ResultsPage> page = scheduler_.ReadResults(job, 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->results.size(), 3u);
  EXPECT_TRUE(page->finished);
}

TEST_F(WorkerProtocolTest, AResultNeverGivenIsAViolationAndNotRecorded) {
  const JobId job = Submit(1);
  ASSERT_TRUE(Send(Hello(1)).ok());  // No credits: given nothing.
  v1::Assignment forged;
  forged.set_job_id(job);
  forged.set_index(0);
  forged.set_attempt(1);
  absl::Status status = Send(Result(forged));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("never given"));
  EXPECT_EQ(scheduler_.GetJob(job)->queued(), 1u);
}

TEST_F(WorkerProtocolTest, EndRequeuesTheWorkersTasksOnce) {
  const JobId job = Submit(2);
  ASSERT_TRUE(Send(Hello(2, 2)).ok());
  EXPECT_EQ(scheduler_.GetJob(job)->running(), 2u);
  EXPECT_TRUE(protocol_.OnEnd());
  EXPECT_FALSE(protocol_.OnEnd());
  EXPECT_TRUE(scheduler_.ListWorkers().empty());
  EXPECT_EQ(scheduler_.GetJob(job)->running(), 0u);
  EXPECT_EQ(scheduler_.GetJob(job)->queued(), 2u);
  // Nothing is handled after the end.
  EXPECT_EQ(Send(Result(channel_->given[0])).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(WorkerProtocolTest, AWorkerDeclaredDeadIsToldToReconnect) {
  ASSERT_TRUE(Send(Hello(1)).ok());
  clock_.Advance(absl::Seconds(11));
  Expiry expiry = scheduler_.ExpireSilentWorkers();
  ASSERT_EQ(expiry.workers.size(), 1u);
  v1::WorkerMessage heartbeat;
  heartbeat.mutable_heartbeat();
  EXPECT_EQ(Send(heartbeat).code(), absl::StatusCode::kUnavailable);
}

// The stream may end (a Close from another thread) while the hello is being
// handled: the worker it registered must not stay behind.
TEST_F(WorkerProtocolTest, AnEndDuringTheHelloLeavesNoWorker) {
  const JobId job = Submit(1);
  v1::WorkerMessage hello = Hello(1, 1);
  absl::Status status =
      protocol_.OnMessage(hello, [this](WorkerKey, const std::string&) {
        EXPECT_FALSE(protocol_.OnEnd());  // Nothing published to remove yet.
        return channel_;
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(scheduler_.ListWorkers().empty());
  router_.Pump();
  EXPECT_EQ(scheduler_.GetJob(job)->queued(), 1u);
  EXPECT_TRUE(channel_->given.empty());
}

// The router closes a stream that registers after the coordinator began
// shutting down; the close ends it at once.
TEST_F(WorkerProtocolTest, AHelloAfterShutdownIsClosedAndRemoved) {
  router_.CloseAll(absl::UnavailableError("shutting down"));
  EXPECT_EQ(Send(Hello(1)).code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(channel_->closed.has_value());
  EXPECT_EQ(channel_->closed->code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(scheduler_.ListWorkers().empty());
}

}  // namespace
}  // namespace qfarm::coordinator
