// The http task kind against the local test server, blocking and in every
// executor mode.
#include "executors/http_task.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "executors/executor.h"
#include "executors/executor_test_util.h"
#include "executors/http_multi.h"
#include "executors/kind_runner.h"
#include "executors/task_kinds.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/http_test_server.h"

namespace qfarm::executors {
namespace {

using ::qfarm::testing::HttpTestServer;
using ::qfarm::testing::HttpTestServerStats;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// The first 16 hex digits of the SHA-256 of `body`.
std::string Sha16(absl::string_view body) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(body.data()), body.size(),
         digest);
  return absl::BytesToHexString(
             absl::string_view(reinterpret_cast<const char*>(digest), 8))
      .substr(0, 16);
}

// The value of a 2xx GET whose body was `body`, times left as patterns.
std::string ValuePattern(int status, absl::string_view body) {
  return absl::StrCat("status=", status, " bytes=", body.size(),
                      " sha256=", Sha16(body),
                      " ttfb_ms=[0-9]+\\.[0-9] total_ms=[0-9]+\\.[0-9]");
}

// A loopback port with a bound socket that does not listen: connecting to
// it is refused.
class RefusingPort {
 public:
  RefusingPort() : socket_(io_) {
    socket_.open(asio::ip::tcp::v4());
    socket_.bind({asio::ip::make_address("127.0.0.1"), 0});
  }
  std::string Url() const {
    return absl::StrCat("http://127.0.0.1:", socket_.local_endpoint().port(),
                        "/");
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = HttpTestServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  v1::Task HttpTask(absl::string_view path, int64_t timeout_ms = 0) const {
    v1::Task task;
    task.set_kind("http");
    task.set_text(server_->Url(path));
    task.set_timeout_ms(timeout_ms);
    return task;
  }

  // Waits until the server holds no request: the client side closed them.
  bool WaitUntilServerIdle() const {
    return server_->WaitForStats(
        [](const HttpTestServerStats& stats) {
          return stats.active_requests == 0;
        },
        kHangDeadline);
  }

  std::unique_ptr<HttpTestServer> server_;
};

TEST(FormatHttpValueTest, CompactOneLine) {
  EXPECT_EQ(FormatHttpValue(200, 1234, "0123456789abcdef", 12'345, 104'250),
            "status=200 bytes=1234 sha256=0123456789abcdef ttfb_ms=12.3 "
            "total_ms=104.2");
}

using RunHttpBlockingTest = HttpServerTest;

TEST_F(RunHttpBlockingTest, GetReportsStatusBytesDigestAndTimes) {
  CancelToken cancel;
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), HttpTask("/bytes/100000"), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_OK) << outcome.error;
  EXPECT_THAT(outcome.value, MatchesRegex(ValuePattern(
                                 200, HttpTestServer::BytesBody(100000))));
  EXPECT_EQ(outcome.error, "");

  outcome = RunTaskBlocking(BuiltInKinds(), HttpTask("/status/204"), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_OK);
  EXPECT_THAT(outcome.value,
              StartsWith("status=204 bytes=0 sha256=e3b0c44298fc1c14 "));
}

TEST_F(RunHttpBlockingTest, ReusesTheThreadsConnection) {
  CancelToken cancel;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(
        RunTaskBlocking(BuiltInKinds(), HttpTask("/delay/0"), cancel).state,
        v1::TASK_STATE_OK);
  }
  EXPECT_EQ(server_->stats().connections_accepted, 1);
  EXPECT_EQ(server_->stats().requests, 5);
}

TEST_F(RunHttpBlockingTest, Non2xxAndConnectionErrorsFail) {
  CancelToken cancel;
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), HttpTask("/status/503"), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
  EXPECT_EQ(outcome.error, "HTTP 503");
  EXPECT_EQ(outcome.value, "");

  outcome = RunTaskBlocking(BuiltInKinds(), HttpTask("/status/301"), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
  EXPECT_EQ(outcome.error,
            absl::StrCat("HTTP 301: redirect to ", server_->Url("/bytes/0"),
                         " not followed"));

  outcome = RunTaskBlocking(BuiltInKinds(), HttpTask("/close"), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
  EXPECT_THAT(outcome.error, HasSubstr("(curl error 52)"));

  RefusingPort refusing;
  v1::Task refused;
  refused.set_kind("http");
  refused.set_text(refusing.Url());
  outcome = RunTaskBlocking(BuiltInKinds(), refused, cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_FAILED);
  EXPECT_THAT(outcome.error, HasSubstr("(curl error 7)"));
}

TEST_F(RunHttpBlockingTest, TimeoutEndsAsTimedOut) {
  CancelToken cancel;
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), HttpTask("/hang", 100), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(outcome.error, "timed out after 100ms");
}

TEST_F(RunHttpBlockingTest, CancelBeforeStartSendsNothing) {
  CancelToken cancel;
  cancel.Cancel();
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), HttpTask("/delay/0"), cancel);
  EXPECT_EQ(outcome.state, v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(server_->stats().connections_accepted, 0);
}

TEST_F(RunHttpBlockingTest, CancelStopsATransferInFlight) {
  CancelToken cancel;
  std::thread canceller([&] {
    EXPECT_TRUE(server_->WaitForActiveRequests(1, kHangDeadline));
    cancel.Cancel();
  });
  TaskOutcome outcome =
      RunTaskBlocking(BuiltInKinds(), HttpTask("/hang"), cancel);
  canceller.join();
  EXPECT_EQ(outcome.state, v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(outcome.error, "job cancelled");
  EXPECT_TRUE(WaitUntilServerIdle());  // The connection was closed.
}

// HttpMulti on a loop run by the test thread.
using HttpMultiTest = HttpServerTest;

TEST_F(HttpMultiTest, CompletesCancelsAndDropsTransfersOnDestruction) {
  asio::io_context io;
  auto http = std::make_unique<HttpMulti>(io);
  std::map<std::string, TaskOutcome> done;
  auto record = [&done](std::string name) {
    return [&done, name](TaskOutcome outcome) {
      EXPECT_TRUE(done.emplace(name, std::move(outcome)).second) << name;
    };
  };
  http->Start(HttpTask("/bytes/10"), record("bytes"));
  const HttpMulti::TransferId cancelled =
      http->Start(HttpTask("/hang"), record("cancelled"));
  http->Start(HttpTask("/hang"), record("dropped"));
  EXPECT_EQ(http->in_flight(), 3u);
  EXPECT_TRUE(done.empty());  // Never called from inside Start().

  while (done.empty() || server_->stats().active_requests < 2) io.run_one();
  ASSERT_EQ(done.count("bytes"), 1u);
  EXPECT_THAT(done["bytes"].value,
              MatchesRegex(ValuePattern(200, HttpTestServer::BytesBody(10))));
  http->Cancel(cancelled);
  http->Cancel(cancelled);  // No effect.
  EXPECT_EQ(http->in_flight(), 1u);
  http.reset();  // With "dropped" still in flight.
  io.run();      // Returns: nothing is left on the loop.
  EXPECT_EQ(done.size(), 1u);
  EXPECT_TRUE(WaitUntilServerIdle());
}

struct HttpModeCase {
  Mode mode;
  int slots;
  // GETs in ManyConcurrentGetsSucceed.
  int gets;
};

std::string HttpCaseName(const ::testing::TestParamInfo<HttpModeCase>& info) {
  return std::string(ModeName(info.param.mode));
}

class HttpExecutorTest : public HttpServerTest,
                         public ::testing::WithParamInterface<HttpModeCase> {
 protected:
  Mode mode() const { return GetParam().mode; }
  int slots() const { return GetParam().slots; }
  bool on_loop() const {
    return mode() == Mode::kAsync || mode() == Mode::kAuto;
  }

  std::unique_ptr<Executor> Make(
      std::function<void(const v1::Assignment&)> on_start) {
    return MakeWithStartHook({.mode = mode(),
                              .slots = slots(),
                              .worker_name = "w1",
                              .clock = &clock_,
                              .sink = &recorder_},
                             std::move(on_start));
  }

  SteadyClock clock_;
  Recorder recorder_;
};

// Serial runs 20 GETs one at a time; thread mode 200 on 50 threads; the
// loop modes 200 at once.
INSTANTIATE_TEST_SUITE_P(
    Modes, HttpExecutorTest,
    ::testing::Values(HttpModeCase{Mode::kSerial, 1, 20},
                      HttpModeCase{Mode::kThread, 50, 200},
                      HttpModeCase{Mode::kAsync, 1000, 200},
                      HttpModeCase{Mode::kAuto, 1000, 200}),
    HttpCaseName);

// Concurrency without timing: the server's /gate/<k> answers no GET until k
// wait at once, so the GETs finish only if the executor holds k in flight
// together (every slot of the thread pool, every GET on the loop); one held
// back would leave them all waiting until the test's deadline.
TEST_P(HttpExecutorTest, ManyConcurrentGetsSucceed) {
  const uint32_t n = GetParam().gets;
  // Serial: one at a time, so a gate of 1. Thread: waves of `slots`.
  const int k = mode() == Mode::kSerial   ? 1
                : mode() == Mode::kThread ? slots()
                                          : static_cast<int>(n);
  const std::string path = absl::StrCat("/gate/", k);
  std::unique_ptr<Executor> executor = Make(recorder_.StartHook());
  for (uint32_t i = 0; i < n; ++i) {
    executor->Submit(Http(1, i, server_->Url(path)));
  }
  ASSERT_TRUE(recorder_.WaitForResults(n))
      << "server stats: active " << server_->stats().active_requests
      << ", most at once " << server_->stats().max_active_requests;
  executor->Shutdown();

  const std::string pattern = ValuePattern(200, absl::StrCat("gate ", k, "\n"));
  int64_t last_start = 0;
  int64_t first_finish = INT64_MAX;
  std::set<std::string> labels;
  for (const v1::TaskResult& result : recorder_.results()) {
    ASSERT_EQ(result.state(), v1::TASK_STATE_OK) << result.error();
    ASSERT_THAT(result.value(), MatchesRegex(pattern));
    labels.insert(result.executor());
    last_start = std::max(last_start, result.started_us());
    first_finish = std::min(first_finish, result.finished_us());
  }
  const HttpTestServerStats stats = server_->stats();
  EXPECT_EQ(stats.requests, n);
  EXPECT_GE(stats.max_active_requests, k);
  switch (mode()) {
    case Mode::kSerial:
      EXPECT_EQ(labels, std::set<std::string>{"serial"});
      // One at a time, on one kept-alive connection.
      EXPECT_EQ(stats.max_active_requests, 1);
      EXPECT_EQ(stats.connections_accepted, 1);
      break;
    case Mode::kThread:
      // Every wave needs every thread.
      EXPECT_EQ(labels.size(), static_cast<size_t>(slots()));
      EXPECT_LE(stats.max_active_requests, slots());
      // Each thread keeps its connection alive.
      EXPECT_LE(stats.connections_accepted, slots());
      break;
    case Mode::kAsync:
    case Mode::kAuto:
      EXPECT_EQ(labels, std::set<std::string>{"async"});
      // All n were in flight together, on one thread: the gate answered
      // none before the last started.
      EXPECT_LT(last_start, first_finish);
      EXPECT_EQ(recorder_.max_running(), static_cast<int>(n));
      EXPECT_EQ(recorder_.result_threads().size(), 1u);
      break;
  }
}

TEST_P(HttpExecutorTest, ErrorsArePerTask) {
  RefusingPort refusing;
  std::unique_ptr<Executor> executor = Make(recorder_.StartHook());
  executor->Submit(Http(1, 0, server_->Url("/bytes/100000")));
  executor->Submit(Http(1, 1, server_->Url("/status/404")));
  executor->Submit(Http(1, 2, server_->Url("/status/503")));
  executor->Submit(Http(1, 3, server_->Url("/close")));
  executor->Submit(Http(1, 4, refusing.Url()));
  executor->Submit(Http(1, 5, server_->Url("/hang"), 100));
  executor->Submit(Http(1, 6, server_->Url("/delay/1")));
  executor->Submit(Http(1, 7, "gopher://127.0.0.1/"));
  executor->Submit(Echo(1, 8, "still fine"));
  ASSERT_TRUE(recorder_.WaitForResults(9));
  executor->Shutdown();

  std::map<Key, v1::TaskResult> by_key = recorder_.results_by_key();
  EXPECT_EQ(by_key[Key(1, 0)].state(), v1::TASK_STATE_OK);
  EXPECT_THAT(
      by_key[Key(1, 0)].value(),
      MatchesRegex(ValuePattern(200, HttpTestServer::BytesBody(100000))));
  EXPECT_EQ(by_key[Key(1, 1)].state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(by_key[Key(1, 1)].error(), "HTTP 404");
  EXPECT_EQ(by_key[Key(1, 2)].state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(by_key[Key(1, 2)].error(), "HTTP 503");
  EXPECT_EQ(by_key[Key(1, 3)].state(), v1::TASK_STATE_FAILED);
  EXPECT_THAT(by_key[Key(1, 3)].error(), HasSubstr("(curl error 52)"));
  EXPECT_EQ(by_key[Key(1, 4)].state(), v1::TASK_STATE_FAILED);
  EXPECT_THAT(by_key[Key(1, 4)].error(), HasSubstr("(curl error 7)"));
  EXPECT_EQ(by_key[Key(1, 5)].state(), v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(by_key[Key(1, 5)].error(), "timed out after 100ms");
  EXPECT_EQ(by_key[Key(1, 6)].state(), v1::TASK_STATE_OK);
  EXPECT_THAT(by_key[Key(1, 6)].value(),
              MatchesRegex(ValuePattern(200, "delayed 1ms\n")));
  EXPECT_EQ(by_key[Key(1, 7)].state(), v1::TASK_STATE_FAILED);
  EXPECT_THAT(by_key[Key(1, 7)].error(), StartsWith("invalid task: http url"));
  EXPECT_EQ(by_key[Key(1, 8)].state(), v1::TASK_STATE_OK);
  EXPECT_EQ(by_key[Key(1, 8)].value(), "still fine");
  for (const auto& [key, result] : by_key) {
    EXPECT_GT(result.started_us(), 0) << key.second;
    if (result.state() != v1::TASK_STATE_OK) {
      EXPECT_EQ(result.value(), "") << key.second;
    }
  }
}

// Job 1's GETs hang (no timeout: only a cancel ends them); job 2's GET is
// submitted once they are in flight. Cancelling job 1 ends its running
// transfers (the server sees the connections close) and its queued ones never
// start; job 2 runs.
TEST_P(HttpExecutorTest, CancelStopsGetsInFlight) {
  constexpr uint32_t kHanging = 5;
  std::unique_ptr<Executor> executor = Make(recorder_.StartHook());
  for (uint32_t i = 0; i < kHanging; ++i) {
    executor->Submit(Http(1, i, server_->Url("/hang")));
  }
  const int running = std::min<int>(kHanging, slots());
  ASSERT_TRUE(server_->WaitForActiveRequests(running, kHangDeadline));
  executor->Submit(Http(2, 0, server_->Url("/delay/1")));
  executor->CancelJob(1);
  ASSERT_TRUE(recorder_.WaitForResults(kHanging + 1));
  EXPECT_TRUE(WaitUntilServerIdle());
  executor->Shutdown();

  std::map<Key, v1::TaskResult> by_key = recorder_.results_by_key();
  int started = 0;
  for (uint32_t i = 0; i < kHanging; ++i) {
    const v1::TaskResult& result = by_key[Key(1, i)];
    EXPECT_EQ(result.state(), v1::TASK_STATE_CANCELLED) << i;
    EXPECT_EQ(result.error(), "job cancelled") << i;
    if (result.started_us() > 0) ++started;
  }
  EXPECT_EQ(started, running);
  EXPECT_EQ(by_key[Key(2, 0)].state(), v1::TASK_STATE_OK);
  EXPECT_EQ(server_->stats().requests, running + 1);
}

}  // namespace
}  // namespace qfarm::executors
