#include "testing/http_test_server.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "asio/buffer.hpp"
#include "asio/connect.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/read.hpp"
#include "asio/read_until.hpp"
#include "asio/write.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace qfarm::testing {
namespace {

using asio::ip::tcp;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Only a hang reaches it; it never paces a passing test.
constexpr absl::Duration kHangDeadline = absl::Seconds(60);

struct Response {
  int status = 0;
  std::string head;
  std::string body;
};

// A blocking HTTP/1.1 client connection for checking the server byte by
// byte.
class Client {
 public:
  explicit Client(int port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                  static_cast<uint16_t>(port)));
  }

  void Send(const std::string& target, const std::string& headers = "") {
    asio::write(socket_, asio::buffer(absl::StrCat(
                             "GET ", target, " HTTP/1.1\r\nHost: test\r\n",
                             headers, "\r\n")));
  }

  void SendRaw(const std::string& bytes) {
    asio::write(socket_, asio::buffer(bytes));
  }

  // Reads one response with a Content-Length (or none, for 204/304).
  Response Read() {
    Response response;
    const size_t head_size =
        asio::read_until(socket_, asio::dynamic_buffer(buffer_), "\r\n\r\n");
    response.head = buffer_.substr(0, head_size);
    buffer_.erase(0, head_size);
    std::vector<std::string> words = absl::StrSplit(response.head, ' ');
    EXPECT_TRUE(absl::SimpleAtoi(words.at(1), &response.status));
    size_t length = 0;
    for (absl::string_view line : absl::StrSplit(response.head, "\r\n")) {
      if (absl::ConsumePrefix(&line, "Content-Length: ")) {
        EXPECT_TRUE(absl::SimpleAtoi(line, &length));
      }
    }
    if (buffer_.size() < length) {
      asio::read(socket_, asio::dynamic_buffer(buffer_),
                 asio::transfer_exactly(length - buffer_.size()));
    }
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return response;
  }

  Response Get(const std::string& target) {
    Send(target);
    return Read();
  }

  // Reads until the server closes; returns what came before.
  std::string ReadToEof() {
    std::error_code error;
    asio::read(socket_, asio::dynamic_buffer(buffer_), error);
    EXPECT_EQ(error, asio::error::eof) << error.message();
    return std::move(buffer_);
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  std::string buffer_;
};

class HttpTestServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = HttpTestServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<HttpTestServer> server_;
};

TEST_F(HttpTestServerTest, BindsLoopbackOnAFreePort) {
  EXPECT_EQ(server_->host(), "127.0.0.1");
  EXPECT_GT(server_->port(), 0);
  EXPECT_EQ(server_->address(), absl::StrCat("127.0.0.1:", server_->port()));
  EXPECT_EQ(server_->Url("/x"),
            absl::StrCat("http://127.0.0.1:", server_->port(), "/x"));
}

TEST_F(HttpTestServerTest, DelayAnswersOk) {
  Client client(server_->port());
  Response response = client.Get("/delay/20");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.head, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(response.body, "delayed 20ms\n");
  EXPECT_EQ(client.Get("/delay/0").body, "delayed 0ms\n");
}

TEST_F(HttpTestServerTest, StatusAnswersThatCode) {
  Client client(server_->port());
  Response unavailable = client.Get("/status/503");
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_THAT(unavailable.head,
              StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_EQ(unavailable.body, "status 503\n");
  EXPECT_EQ(client.Get("/status/404").status, 404);
  EXPECT_EQ(client.Get("/status/200").body, "status 200\n");
  Response no_content = client.Get("/status/204");
  EXPECT_EQ(no_content.status, 204);
  EXPECT_EQ(no_content.body, "");
  Response redirect = client.Get("/status/302");
  EXPECT_EQ(redirect.status, 302);
  EXPECT_THAT(redirect.head, HasSubstr("\r\nLocation: /bytes/0\r\n"));
  // Out of range: an unknown path.
  EXPECT_EQ(client.Get("/status/600").status, 404);
  EXPECT_EQ(client.Get("/status/x").status, 404);
}

TEST_F(HttpTestServerTest, BytesSendsExactlyTheDeterministicBody) {
  EXPECT_EQ(HttpTestServer::BytesBody(28), "abcdefghijklmnopqrstuvwxyzab");
  Client client(server_->port());
  for (int64_t n : {0, 1, 27, 65536, 300'001}) {
    Response response = client.Get(absl::StrCat("/bytes/", n));
    EXPECT_EQ(response.status, 200) << n;
    EXPECT_THAT(response.head,
                HasSubstr(absl::StrCat("Content-Length: ", n, "\r\n")));
    EXPECT_EQ(response.body, HttpTestServer::BytesBody(n)) << n;
  }
}

TEST_F(HttpTestServerTest, KeepsConnectionsAlive) {
  Client client(server_->port());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(client.Get("/delay/0").status, 200);
  HttpTestServerStats stats = server_->stats();
  EXPECT_EQ(stats.connections_accepted, 1);
  EXPECT_EQ(stats.requests, 5);
  EXPECT_EQ(stats.open_connections, 1);
}

TEST_F(HttpTestServerTest, ConnectionCloseIsHonoured) {
  Client client(server_->port());
  client.Send("/status/200", "Connection: close\r\n");
  std::string all = client.ReadToEof();
  EXPECT_THAT(all, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(all, HasSubstr("Connection: close\r\n"));
}

TEST_F(HttpTestServerTest, CloseEndsTheConnectionWithoutAResponse) {
  Client client(server_->port());
  client.Send("/close");
  EXPECT_EQ(client.ReadToEof(), "");
}

TEST_F(HttpTestServerTest, UnknownPathsAndBadRequests) {
  Client client(server_->port());
  EXPECT_EQ(client.Get("/nope").status, 404);
  EXPECT_EQ(client.Get("/delay/x").status, 404);
  // Not HTTP: 400, then the server closes.
  Client raw(server_->port());
  raw.SendRaw("HELLO\r\n\r\n");
  EXPECT_THAT(raw.ReadToEof(), StartsWith("HTTP/1.1 400 Bad Request\r\n"));
}

TEST_F(HttpTestServerTest, HangNeverAnswersAndStopClosesIt) {
  Client client(server_->port());
  client.Send("/hang");
  ASSERT_TRUE(server_->WaitForActiveRequests(1, kHangDeadline));
  server_->Stop();
  EXPECT_EQ(client.ReadToEof(), "");  // Closed with nothing written.
  server_->Stop();                    // Idempotent.
  EXPECT_EQ(server_->stats().open_connections, 0);
  EXPECT_EQ(server_->stats().active_requests, 0);
}

// Thousands of delayed requests wait at once on the one loop thread; Stop()
// closes them all.
TEST_F(HttpTestServerTest, HoldsThousandsOfDelayedRequestsAtOnce) {
  constexpr int kConnections = 2000;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<Client>(server_->port()));
    clients.back()->Send("/delay/3600000");
  }
  ASSERT_TRUE(server_->WaitForActiveRequests(kConnections, kHangDeadline));
  EXPECT_EQ(server_->stats().max_open_connections, kConnections);
  server_->Stop();
  for (auto& client : clients) EXPECT_EQ(client->ReadToEof(), "");
}

TEST_F(HttpTestServerTest, AnswersConcurrentDelayedRequests) {
  constexpr int kConnections = 200;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<Client>(server_->port()));
    clients.back()->Send("/delay/50");
  }
  for (auto& client : clients) EXPECT_EQ(client->Read().status, 200);
  EXPECT_EQ(server_->stats().requests, kConnections);
}

// /gate/<n> answers nobody until n wait, then everybody; waiters at another
// gate do not count. Stop() closes requests still waiting.
TEST_F(HttpTestServerTest, GateOpensWhenItsCountWaits) {
  constexpr int kCount = 3;
  std::vector<std::unique_ptr<Client>> clients;
  Client other(server_->port());
  other.Send("/gate/10");
  for (int i = 0; i < kCount - 1; ++i) {
    clients.push_back(std::make_unique<Client>(server_->port()));
    clients.back()->Send("/gate/3");
  }
  ASSERT_TRUE(server_->WaitForActiveRequests(kCount, kHangDeadline));
  EXPECT_EQ(server_->stats().active_requests, kCount);  // Nobody answered.
  clients.push_back(std::make_unique<Client>(server_->port()));
  clients.back()->Send("/gate/3");
  for (auto& client : clients) {
    Response response = client->Read();
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "gate 3\n");
  }
  // Kept alive: the same connection may wait at the gate again.
  clients[0]->Send("/gate/1");
  EXPECT_EQ(clients[0]->Read().body, "gate 1\n");
  // Only the one at /gate/10 is left.
  EXPECT_TRUE(server_->WaitForStats(
      [](const HttpTestServerStats& stats) {
        return stats.active_requests == 1;
      },
      kHangDeadline));
  server_->Stop();
  EXPECT_EQ(other.ReadToEof(), "");
  EXPECT_EQ(server_->stats().active_requests, 0);
}

TEST(HttpTestServerStartTest, RefusesHostNames) {
  auto server = HttpTestServer::Start({.host = "localhost"});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

// The binary prints its address first, serves, and exits 0 on SIGTERM.
TEST(HttpTestServerBinaryTest, PrintsAddressServesAndStopsOnSigterm) {
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  std::string binary = QFARM_HTTP_TEST_SERVER_BIN;
  std::string listen = "--listen=127.0.0.1:0";
  char* argv[] = {binary.data(), listen.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv, environ),
            0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);

  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(out[0]);
  absl::string_view rest = line;
  int port = 0;
  EXPECT_TRUE(absl::ConsumePrefix(&rest, "listening on 127.0.0.1:")) << line;
  EXPECT_TRUE(absl::SimpleAtoi(rest, &port)) << line;
  if (port > 0) {
    Client client(port);
    EXPECT_EQ(client.Get("/status/201").status, 201);
  }

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace qfarm::testing
