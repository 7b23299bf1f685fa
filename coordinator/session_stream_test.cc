// A Session whose client does not read, over a real gRPC server in-process
// (127.0.0.1, port 0): the refusals it queues stay bounded.
#include "coordinator/session_stream.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <functional>
#include <memory>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

class SessionStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One task per job: a job of two is refused, cheaply and at once.
    service_.SetLimits({.max_tasks_per_job = 1});
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    // A small receive window and no BDP probing: the coordinator's writes
    // stall soon when this client does not read.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
    stub_ = v1::Farm::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                  grpc::InsecureChannelCredentials(), args));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Polls the service's gauges (they live in the server) until `done`.
  bool WaitForGauges(const std::function<bool(const SessionGauges&)>& done) {
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (!done(service_.session_gauges())) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(1));  // Polling the server's state.
    }
    return true;
  }

  FakeClock clock_;
  Scheduler scheduler_{&clock_};
  Router router_{&scheduler_};
  TokenAuth auth_;
  FarmService service_{&scheduler_, &router_, &auth_};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Farm::Stub> stub_;
};

v1::SessionRequest TooBig(uint64_t tag) {
  v1::SessionRequest request;
  request.set_tag(tag);
  for (int i = 0; i < 2; ++i) request.add_tasks()->set_kind("echo");
  return request;
}

// Without the bound, the coordinator would read every request and queue
// every refusal for a client that never reads.
TEST_F(SessionStreamTest, ClientThatDoesNotReadIsHeldBackNotFailed) {
  constexpr uint64_t kRequests = 2000;
  grpc::ClientContext context;
  // A session that never read again would hang this test: fail it instead.
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto stream = stub_->Session(&context);
  // Writes block once the coordinator stops reading; they go on when this
  // test reads.
  std::thread writer([&] {
    for (uint64_t tag = 1; tag <= kRequests; ++tag) {
      if (!stream->Write(TooBig(tag))) return;
    }
    stream->WritesDone();
  });
  // On a failed assertion: the writer may be blocked on flow control.
  absl::Cleanup stop_writer = [&] {
    if (!writer.joinable()) return;
    context.TryCancel();
    writer.join();
  };
  ASSERT_TRUE(WaitForGauges([](const SessionGauges& g) {
    return g.paused_reads.load() == 1;
  })) << "the session never stopped reading; refusals queued: "
      << service_.session_gauges().queued_refusals.load();
  EXPECT_EQ(service_.session_gauges().queued_refusals.load(),
            static_cast<int64_t>(kMaxQueuedRefusals));

  // Reading drains the queue and the session reads again: every refusal
  // arrives, in order.
  v1::SessionResponse response;
  uint64_t expected = 1;
  while (stream->Read(&response)) {
    ASSERT_EQ(response.tag(), expected);
    ASSERT_EQ(response.error().code(), grpc::StatusCode::INVALID_ARGUMENT);
    ++expected;
  }
  writer.join();
  EXPECT_EQ(expected, kRequests + 1);
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(WaitForGauges([](const SessionGauges& g) {
    return g.paused_reads.load() == 0 && g.queued_refusals.load() == 0;
  }));
}

// A client that goes away while its session is paused leaves nothing
// counted behind.
TEST_F(SessionStreamTest, CancelledWhilePausedReleasesItsQueue) {
  grpc::ClientContext context;
  auto stream = stub_->Session(&context);
  std::thread writer([&] {
    for (uint64_t tag = 1; tag <= 2000; ++tag) {
      if (!stream->Write(TooBig(tag))) return;
    }
  });
  absl::Cleanup stop_writer = [&] {
    context.TryCancel();
    writer.join();
  };
  ASSERT_TRUE(WaitForGauges([](const SessionGauges& g) {
    return g.paused_reads.load() == 1;
  })) << "the session never stopped reading; refusals queued: "
      << service_.session_gauges().queued_refusals.load();
  std::move(stop_writer).Invoke();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitForGauges([](const SessionGauges& g) {
    return g.paused_reads.load() == 0 && g.queued_refusals.load() == 0;
  }));
}

}  // namespace
}  // namespace qfarm::coordinator
