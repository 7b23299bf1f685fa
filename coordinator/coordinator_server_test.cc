// The coordinator's gRPC services in-process, on 127.0.0.1 port 0, spoken to
// with raw stubs: health, the worker stream's protocol rules, and a job's
// round trip through a hand-driven worker stream.
#include "coordinator/coordinator_server.h"

#include <grpcpp/client_context.h>

#include "common/clock.h"
#include "common/grpc_options.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "qfarm/v1/farm.grpc.pb.h"
#include "qfarm/v1/worker_link.grpc.pb.h"

namespace qfarm::coordinator {
namespace {

using ::testing::HasSubstr;

class CoordinatorServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = CoordinatorServer::Start({.listen = "127.0.0.1:0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = MakeChannel(server_->address());
  }

  std::unique_ptr<CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(CoordinatorServerTest, ReportsTheRealPort) {
  EXPECT_GT(server_->port(), 0);
  EXPECT_EQ(server_->address(), absl::StrCat("127.0.0.1:", server_->port()));
}

TEST_F(CoordinatorServerTest, HealthIsServing) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// --health-listen: a plaintext port with the health service alone, off by
// default.
TEST(CoordinatorHealthPortTest, ServesHealthAloneWhenAsked) {
  auto without = CoordinatorServer::Start({.listen = "127.0.0.1:0"});
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ((*without)->health_port(), 0);

  CoordinatorOptions options{.listen = "127.0.0.1:0"};
  options.health_listen = "127.0.0.1:0";
  auto server = CoordinatorServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->health_port(), 0);
  EXPECT_NE((*server)->health_port(), (*server)->port());
  auto channel =
      MakeChannel(absl::StrCat("127.0.0.1:", (*server)->health_port()));
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  auto farm = v1::Farm::NewStub(channel);
  grpc::ClientContext farm_context;
  v1::ListWorkersResponse workers;
  EXPECT_EQ(farm->ListWorkers(&farm_context, v1::ListWorkersRequest(), &workers)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  options.health_listen = "no-port";
  EXPECT_EQ(CoordinatorServer::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorServerTest, AddressInUseIsUnavailable) {
  auto second = CoordinatorServer::Start({.listen = server_->address()});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(CoordinatorServerTest, WorkerStreamMustStartWithHello) {
  auto stub = v1::WorkerLink::NewStub(channel_);
  grpc::ClientContext context;
  auto stream = stub->Connect(&context);
  v1::WorkerMessage message;
  message.set_credits(3);
  ASSERT_TRUE(stream->Write(message));
  v1::CoordinatorMessage reply;
  EXPECT_FALSE(stream->Read(&reply));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("hello"));
}

// A server stopped right after it started: the tick loop's first
// keep-awake call races the stop. When that call went to the server itself
// on an in-process channel, gRPC 1.51 crashed (a SEGFAULT about once in
// 4,000 stops, and a closure scheduled twice under TSan); it now goes to a
// lame channel.
TEST(CoordinatorServerLifecycleTest, StopsRightAfterStartingManyTimes) {
  for (int i = 0; i < 200; ++i) {
    auto server = CoordinatorServer::Start({.listen = "127.0.0.1:0"});
    ASSERT_TRUE(server.ok()) << server.status();
    (*server)->Shutdown();
  }
}

// The tick loop runs on the injected clock: a silent worker is declared dead
// when the fake clock passes the heartbeat timeout, not before.
TEST(CoordinatorServerClockTest, SilentWorkerExpiresOnTheInjectedClock) {
  FakeClock clock;
  CoordinatorOptions options{.listen = "127.0.0.1:0", .clock = &clock};
  options.scheduler.heartbeat_timeout = absl::Seconds(10);
  auto server = CoordinatorServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::WorkerLink::NewStub(MakeChannel((*server)->address()));
  grpc::ClientContext context;
  auto stream = stub->Connect(&context);
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id("silent");
  hello.mutable_hello()->set_slots(1);
  hello.mutable_hello()->add_kinds("echo");
  ASSERT_TRUE(stream->Write(hello));
  v1::CoordinatorMessage reply;
  ASSERT_TRUE(stream->Read(&reply));
  ASSERT_TRUE(reply.has_welcome());
  // Below the timeout nothing happens, however long the real wait.
  clock.Advance(absl::Seconds(9));
  auto farm = v1::Farm::NewStub(MakeChannel((*server)->address()));
  {
    grpc::ClientContext list_context;
    v1::ListWorkersRequest request;
    v1::ListWorkersResponse workers;
    ASSERT_TRUE(farm->ListWorkers(&list_context, request, &workers).ok());
    EXPECT_EQ(workers.workers_size(), 1);
  }
  // Past the timeout and past the next expiry (every 2.5 s): the loop wakes
  // on the fake clock and ends the stream.
  clock.Advance(absl::Seconds(3));
  EXPECT_FALSE(stream->Read(&reply));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("no heartbeat"));
}

TEST_F(CoordinatorServerTest, HelloWithZeroSlotsIsRefused) {
  auto stub = v1::WorkerLink::NewStub(channel_);
  grpc::ClientContext context;
  auto stream = stub->Connect(&context);
  v1::WorkerMessage message;
  message.mutable_hello()->set_worker_id("w");
  ASSERT_TRUE(stream->Write(message));
  v1::CoordinatorMessage reply;
  EXPECT_FALSE(stream->Read(&reply));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("hello.slots 0"));
}

TEST_F(CoordinatorServerTest, HelloWithoutKindsOrWithABadKindIsRefused) {
  for (const char* kind : {"", "bad kind"}) {
    auto stub = v1::WorkerLink::NewStub(channel_);
    grpc::ClientContext context;
    auto stream = stub->Connect(&context);
    v1::WorkerMessage message;
    message.mutable_hello()->set_worker_id("w");
    message.mutable_hello()->set_slots(1);
    if (*kind != '\0') message.mutable_hello()->add_kinds(kind);
    ASSERT_TRUE(stream->Write(message));
    v1::CoordinatorMessage reply;
    EXPECT_FALSE(stream->Read(&reply));
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(
        status.error_message(),
        HasSubstr(*kind == '\0' ? "must offer at least one kind"
                                : "hello.kinds: kind name \"bad kind\""));
  }
}

TEST_F(CoordinatorServerTest, JobRoundTripThroughAHandDrivenWorker) {
  auto worker = v1::WorkerLink::NewStub(channel_);
  grpc::ClientContext worker_context;
  auto stream = worker->Connect(&worker_context);
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id("hand");
  hello.mutable_hello()->set_mode("thread");
  hello.mutable_hello()->set_slots(2);
  hello.mutable_hello()->add_kinds("echo");
  hello.set_credits(2);
  ASSERT_TRUE(stream->Write(hello));
  v1::CoordinatorMessage in;
  ASSERT_TRUE(stream->Read(&in));
  ASSERT_TRUE(in.has_welcome());
  EXPECT_EQ(in.welcome().worker_id(), "hand");

  auto farm = v1::Farm::NewStub(channel_);
  v1::SubmitJobRequest submit;
  for (int i = 0; i < 3; ++i) {
    v1::Task* task = submit.add_tasks();
    task->set_kind("echo");
    task->set_text(absl::StrCat("t", i));
  }
  v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(farm->SubmitJob(&context, submit, &submitted).ok());
  }
  // Two credits: two tasks arrive (possibly over several messages); the
  // third waits for a credit.
  int received = 0;
  std::vector<v1::Assignment> assignments;
  while (received < 2) {
    ASSERT_TRUE(stream->Read(&in));
    ASSERT_TRUE(in.has_tasks());
    for (const auto& a : in.tasks().assignments()) assignments.push_back(a);
    received += in.tasks().assignments_size();
  }
  ASSERT_EQ(received, 2);
  auto answer = [&](const v1::Assignment& a, uint32_t credits) {
    v1::WorkerMessage out;
    v1::TaskResult* r = out.mutable_results()->add_results();
    r->set_job_id(a.job_id());
    r->set_index(a.index());
    r->set_attempt(a.attempt());
    r->set_state(v1::TASK_STATE_OK);
    r->set_value(a.task().text());
    r->set_worker("hand");
    r->set_executor("thread-0");
    out.set_credits(credits);
    return stream->Write(out);
  };
  ASSERT_TRUE(answer(assignments[0], 1));
  ASSERT_TRUE(stream->Read(&in));
  ASSERT_EQ(in.tasks().assignments_size(), 1);
  assignments.push_back(in.tasks().assignments(0));
  ASSERT_TRUE(answer(assignments[1], 0));
  ASSERT_TRUE(answer(assignments[2], 0));
  // A duplicate is dropped: the watch still sees three results.
  ASSERT_TRUE(answer(assignments[2], 0));

  grpc::ClientContext watch_context;
  v1::WatchJobRequest watch;
  watch.set_job_id(submitted.job_id());
  auto reader = farm->WatchJob(&watch_context, watch);
  std::vector<std::string> values(3);
  int results = 0;
  v1::ResultBatch batch;
  while (reader->Read(&batch)) {
    for (const auto& r : batch.results()) {
      values[r.index()] = r.value();
      ++results;
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(results, 3);
  EXPECT_THAT(values, ::testing::ElementsAre("t0", "t1", "t2"));

  grpc::ClientContext get_context;
  v1::GetJobRequest get;
  get.set_job_id(submitted.job_id());
  v1::JobInfo info;
  ASSERT_TRUE(farm->GetJob(&get_context, get, &info).ok());
  EXPECT_EQ(info.state(), v1::JOB_STATE_DONE);
  EXPECT_EQ(info.ok(), 3u);

  stream->WritesDone();
  while (stream->Read(&in)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(CoordinatorServerTest, ResultForATaskNeverGivenEndsTheStream) {
  auto farm = v1::Farm::NewStub(channel_);
  v1::SubmitJobRequest submit;
  submit.add_tasks()->set_kind("echo");
  v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(farm->SubmitJob(&context, submit, &submitted).ok());
  }
  auto worker = v1::WorkerLink::NewStub(channel_);
  grpc::ClientContext context;
  auto stream = worker->Connect(&context);
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id("liar");
  hello.mutable_hello()->set_slots(1);  // No credits: it is given nothing.
  hello.mutable_hello()->add_kinds("echo");
  ASSERT_TRUE(stream->Write(hello));
  v1::CoordinatorMessage in;
  ASSERT_TRUE(stream->Read(&in));
  ASSERT_TRUE(in.has_welcome());
  v1::WorkerMessage forged;
  v1::TaskResult* r = forged.mutable_results()->add_results();
  r->set_job_id(submitted.job_id());
  r->set_index(0);
  r->set_attempt(1);
  r->set_state(v1::TASK_STATE_OK);
  r->set_value("forged");
  ASSERT_TRUE(stream->Write(forged));
  while (stream->Read(&in)) {
  }
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("never given"));
  // Nothing was recorded: the task is still queued.
  grpc::ClientContext get_context;
  v1::GetJobRequest get;
  get.set_job_id(submitted.job_id());
  v1::JobInfo info;
  ASSERT_TRUE(farm->GetJob(&get_context, get, &info).ok());
  EXPECT_EQ(info.queued(), 1u);
  EXPECT_EQ(info.ok(), 0u);
}

TEST_F(CoordinatorServerTest, UnknownJobIsNotFoundEverywhere) {
  auto farm = v1::Farm::NewStub(channel_);
  {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_job_id(42);
    v1::JobInfo info;
    EXPECT_EQ(farm->GetJob(&context, request, &info).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    v1::CancelJobRequest request;
    request.set_job_id(42);
    v1::CancelJobResponse response;
    EXPECT_EQ(farm->CancelJob(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    v1::WatchJobRequest request;
    request.set_job_id(42);
    auto reader = farm->WatchJob(&context, request);
    v1::ResultBatch batch;
    EXPECT_FALSE(reader->Read(&batch));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(CoordinatorServerTest, FullQueueIsResourceExhaustedAndEmptyJobInvalid) {
  server_.reset();
  auto server = CoordinatorServer::Start(
      {.listen = "127.0.0.1:0", .scheduler = {.max_queued = 2}});
  ASSERT_TRUE(server.ok());
  server_ = *std::move(server);
  auto farm = v1::Farm::NewStub(MakeChannel(server_->address()));
  v1::SubmitJobRequest request;
  v1::SubmitJobResponse response;
  {
    grpc::ClientContext context;
    grpc::Status status = farm->SubmitJob(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  for (int i = 0; i < 3; ++i) {
    request.add_tasks()->set_kind("echo");
  }
  grpc::ClientContext context;
  grpc::Status status = farm->SubmitJob(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("over the queue limit of 2"));
}

}  // namespace
}  // namespace qfarm::coordinator
