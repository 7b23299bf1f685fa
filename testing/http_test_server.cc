#include "testing/http_test_server.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "asio/awaitable.hpp"
#include "asio/buffer.hpp"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/address.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/post.hpp"
#include "asio/read.hpp"
#include "asio/read_until.hpp"
#include "asio/redirect_error.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"

namespace qfarm::testing {
namespace {

using asio::ip::tcp;

// A request head larger than this is refused by closing the connection.
constexpr size_t kMaxHeadBytes = 64 * 1024;
// Request bodies (skipped) and /bytes bodies are bounded.
constexpr int64_t kMaxRequestBodyBytes = 1 << 20;
constexpr int64_t kMaxBytesBody = int64_t{1} << 30;
constexpr int64_t kMaxDelayMs = 3'600'000;
// The most requests one /gate/<n> may wait for.
constexpr int64_t kMaxGate = 100'000;
// /bytes bodies are written in pieces of this size.
constexpr size_t kChunkBytes = 64 * 1024;

auto Redirect(std::error_code& error) {
  return asio::redirect_error(asio::use_awaitable, error);
}

// One accepted connection; owned by its Serve() coroutine, known to the
// server (for Stop()) while it is open. Loop thread only.
struct Connection {
  explicit Connection(tcp::socket s)
      : socket(std::move(s)), timer(socket.get_executor()) {}

  // Aborts whatever the connection's coroutine awaits.
  void Close() {
    closed = true;
    std::error_code ignored;
    socket.close(ignored);
    timer.cancel();
  }

  tcp::socket socket;
  asio::steady_timer timer;
  bool closed = false;
  // Set when the /gate this connection waits at opens.
  bool gate_open = false;
};

struct Request {
  bool valid = false;
  std::string method;
  std::string target;
  bool keep_alive = true;
  int64_t content_length = 0;
};

// Parses a request head ending in "\r\n\r\n".
Request ParseHead(absl::string_view head) {
  Request request;
  std::vector<absl::string_view> lines =
      absl::StrSplit(head, "\r\n", absl::SkipEmpty());
  if (lines.empty()) return request;
  std::vector<absl::string_view> parts = absl::StrSplit(lines[0], ' ');
  if (parts.size() != 3 || parts[1].empty() || parts[1][0] != '/' ||
      !absl::StartsWith(parts[2], "HTTP/1.")) {
    return request;
  }
  request.method = std::string(parts[0]);
  request.target = std::string(parts[1]);
  const bool http10 = parts[2] == "HTTP/1.0";
  request.keep_alive = !http10;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> header =
        absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
    const std::string name = absl::AsciiStrToLower(header.first);
    const std::string value =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(header.second));
    if (name == "connection") {
      if (value == "close") request.keep_alive = false;
      if (value == "keep-alive") request.keep_alive = true;
    } else if (name == "content-length") {
      if (!absl::SimpleAtoi(value, &request.content_length) ||
          request.content_length < 0) {
        return request;
      }
    } else if (name == "transfer-encoding") {
      return request;  // Chunked request bodies are not supported.
    }
  }
  request.valid = true;
  return request;
}

absl::string_view Reason(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

bool IsRedirect(int code) {
  return code == 301 || code == 302 || code == 303 || code == 307 ||
         code == 308;
}

// A status line and headers; a Content-Length unless `length` < 0.
std::string Head(int code, int64_t length, bool keep_alive,
                 absl::string_view content_type = "text/plain") {
  std::string head = absl::StrCat("HTTP/1.1 ", code, " ", Reason(code),
                                  "\r\nServer: qfarm-http-test-server\r\n");
  if (length >= 0) {
    absl::StrAppend(&head, "Content-Type: ", content_type,
                    "\r\nContent-Length: ", length, "\r\n");
  }
  if (IsRedirect(code)) absl::StrAppend(&head, "Location: /bytes/0\r\n");
  absl::StrAppend(&head, "Connection: ", keep_alive ? "keep-alive" : "close",
                  "\r\n\r\n");
  return head;
}

std::string Response(int code, absl::string_view body, bool keep_alive) {
  return absl::StrCat(Head(code, static_cast<int64_t>(body.size()), keep_alive),
                      body);
}

// Parses the decimal number after `prefix` in `path`, within [min, max].
bool NumberAfter(absl::string_view path, absl::string_view prefix, int64_t min,
                 int64_t max, int64_t* value) {
  return absl::ConsumePrefix(&path, prefix) && !path.empty() &&
         absl::ascii_isdigit(static_cast<unsigned char>(path[0])) &&
         absl::SimpleAtoi(path, value) && *value >= min && *value <= max;
}

// kChunkBytes of the body pattern plus one period, so any offset's chunk is
// a substring.
const std::string& PatternBuffer() {
  static const std::string* pattern = [] {
    auto* p = new std::string(kChunkBytes + 26, '\0');
    for (size_t i = 0; i < p->size(); ++i) (*p)[i] = 'a' + i % 26;
    return p;
  }();
  return *pattern;
}

}  // namespace

class HttpTestServer::Impl {
 public:
  Impl() : acceptor_(io_) {}

  // Binds and listens; returns the bound port.
  absl::StatusOr<int> Listen(const std::string& host, int port) {
    std::error_code error;
    asio::ip::address address = asio::ip::make_address(host, error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("listen host \"", host, "\" is not an IP address"));
    }
    tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
    acceptor_.open(endpoint.protocol(), error);
    if (!error) acceptor_.set_option(tcp::acceptor::reuse_address(true), error);
    if (!error) acceptor_.bind(endpoint, error);
    if (!error)
      acceptor_.listen(asio::socket_base::max_listen_connections, error);
    if (error) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":",
                                                 port, ": ", error.message()));
    }
    asio::co_spawn(io_, Accept(), asio::detached);
    return acceptor_.local_endpoint().port();
  }

  // Runs the loop until Stop() closed everything.
  void Run() { io_.run(); }

  void RequestStop() {
    asio::post(io_, [this] {
      stopping_ = true;
      std::error_code ignored;
      acceptor_.close(ignored);
      for (Connection* connection : connections_) connection->Close();
    });
  }

  HttpTestServerStats stats() const {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

  bool WaitForStats(const std::function<bool(const HttpTestServerStats&)>& done,
                    absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto holds = [this, &done]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return done(stats_);
    };
    return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
  }

 private:
  asio::awaitable<void> Accept() {
    asio::steady_timer backoff(io_);
    for (;;) {
      std::error_code error;
      tcp::socket socket = co_await acceptor_.async_accept(Redirect(error));
      if (stopping_ || !acceptor_.is_open()) co_return;
      if (error) {
        // Out of descriptors, for example: wait a little instead of spinning.
        backoff.expires_after(std::chrono::milliseconds(10));
        co_await backoff.async_wait(Redirect(error));
        continue;
      }
      socket.set_option(tcp::no_delay(true), error);
      auto connection = std::make_shared<Connection>(std::move(socket));
      connections_.insert(connection.get());
      {
        absl::MutexLock lock(&mu_);
        ++stats_.connections_accepted;
        stats_.max_open_connections =
            std::max(stats_.max_open_connections, ++stats_.open_connections);
      }
      asio::co_spawn(io_, Serve(std::move(connection)), asio::detached);
    }
  }

  asio::awaitable<void> Serve(std::shared_ptr<Connection> connection) {
    std::string buffer;
    for (;;) {
      std::error_code error;
      const size_t head_size = co_await asio::async_read_until(
          connection->socket, asio::dynamic_buffer(buffer, kMaxHeadBytes),
          "\r\n\r\n", Redirect(error));
      if (error || connection->closed) break;
      Request request =
          ParseHead(absl::string_view(buffer).substr(0, head_size));
      buffer.erase(0, head_size);
      if (!request.valid) {
        co_await Write(*connection, Response(400, "bad request\n", false));
        break;
      }
      if (request.content_length > kMaxRequestBodyBytes) {
        co_await Write(*connection, Response(413, "body too large\n", false));
        break;
      }
      if (!co_await SkipBody(*connection, buffer, request.content_length)) {
        break;
      }
      BeginRequest();
      const bool keep_open = co_await Answer(*connection, request);
      EndRequest();
      if (!keep_open || !request.keep_alive || connection->closed) break;
    }
    connection->Close();
    connections_.erase(connection.get());
    absl::MutexLock lock(&mu_);
    --stats_.open_connections;
  }

  // Discards `length` body bytes, those already in `buffer` first.
  asio::awaitable<bool> SkipBody(Connection& connection, std::string& buffer,
                                 int64_t length) {
    const size_t buffered =
        std::min(buffer.size(), static_cast<size_t>(length));
    buffer.erase(0, buffered);
    const size_t rest = static_cast<size_t>(length) - buffered;
    if (rest == 0) co_return true;
    std::string sink(rest, '\0');
    std::error_code error;
    co_await asio::async_read(connection.socket, asio::buffer(sink),
                              Redirect(error));
    co_return !error && !connection.closed;
  }

  // Answers one request; false if the connection must close.
  asio::awaitable<bool> Answer(Connection& connection, const Request& request) {
    absl::string_view path = request.target;
    path = path.substr(0, path.find('?'));
    const bool keep_alive = request.keep_alive;
    int64_t n = 0;
    if (NumberAfter(path, "/delay/", 0, kMaxDelayMs, &n)) {
      if (connection.closed) co_return false;
      connection.timer.expires_after(std::chrono::milliseconds(n));
      std::error_code error;
      co_await connection.timer.async_wait(Redirect(error));
      if (error || connection.closed) co_return false;
      co_return co_await Write(
          connection,
          Response(200, absl::StrCat("delayed ", n, "ms\n"), keep_alive));
    }
    if (NumberAfter(path, "/status/", 200, 599, &n)) {
      const int code = static_cast<int>(n);
      if (code == 204 || code == 304) {
        co_return co_await Write(connection, Head(code, -1, keep_alive));
      }
      co_return co_await Write(
          connection,
          Response(code, absl::StrCat("status ", code, "\n"), keep_alive));
    }
    if (NumberAfter(path, "/bytes/", 0, kMaxBytesBody, &n)) {
      if (!co_await Write(connection, Head(200, n, keep_alive,
                                           "application/octet-stream"))) {
        co_return false;
      }
      const std::string& pattern = PatternBuffer();
      for (int64_t offset = 0; offset < n;) {
        const size_t size =
            static_cast<size_t>(std::min<int64_t>(n - offset, kChunkBytes));
        const absl::string_view chunk = absl::string_view(pattern).substr(
            static_cast<size_t>(offset % 26), size);
        std::error_code error;
        co_await asio::async_write(connection.socket,
                                   asio::buffer(chunk.data(), chunk.size()),
                                   Redirect(error));
        if (error || connection.closed) co_return false;
        offset += static_cast<int64_t>(size);
      }
      co_return keep_alive;
    }
    if (NumberAfter(path, "/gate/", 1, kMaxGate, &n)) {
      co_return co_await PassGate(connection, n, keep_alive);
    }
    if (path == "/close") co_return false;
    if (path == "/hang") {
      // Reads (and drops) until the client goes away or Stop() closes it.
      char scratch[4096];
      for (;;) {
        std::error_code error;
        co_await connection.socket.async_read_some(asio::buffer(scratch),
                                                   Redirect(error));
        if (error || connection.closed) co_return false;
      }
    }
    co_return co_await Write(connection,
                             Response(404, "not found\n", keep_alive));
  }

  // /gate/<n>: holds the request until n wait at /gate/<n> at once, then
  // answers them all.
  asio::awaitable<bool> PassGate(Connection& connection, int64_t n,
                                 bool keep_alive) {
    if (connection.closed) co_return false;
    std::vector<Connection*>& waiting = gates_[n];
    if (static_cast<int64_t>(waiting.size()) + 1 >= n) {
      for (Connection* other : waiting) {
        other->gate_open = true;
        other->timer.cancel();
      }
      gates_.erase(n);
    } else {
      waiting.push_back(&connection);
      connection.gate_open = false;
      connection.timer.expires_at(asio::steady_timer::time_point::max());
      std::error_code error;
      co_await connection.timer.async_wait(Redirect(error));
      if (!connection.gate_open) {  // Closed by Stop() while waiting.
        std::vector<Connection*>& still = gates_[n];
        still.erase(std::remove(still.begin(), still.end(), &connection),
                    still.end());
        if (still.empty()) gates_.erase(n);
        co_return false;
      }
      if (connection.closed) co_return false;
    }
    co_return co_await Write(
        connection, Response(200, absl::StrCat("gate ", n, "\n"), keep_alive));
  }

  asio::awaitable<bool> Write(Connection& connection, std::string text) {
    if (connection.closed) co_return false;
    std::error_code error;
    co_await asio::async_write(connection.socket, asio::buffer(text),
                               Redirect(error));
    co_return !error && !connection.closed;
  }

  void BeginRequest() {
    absl::MutexLock lock(&mu_);
    ++stats_.requests;
    stats_.max_active_requests =
        std::max(stats_.max_active_requests, ++stats_.active_requests);
  }

  void EndRequest() {
    absl::MutexLock lock(&mu_);
    --stats_.active_requests;
  }

  asio::io_context io_{1};
  tcp::acceptor acceptor_;
  // Loop thread only.
  bool stopping_ = false;
  absl::flat_hash_set<Connection*> connections_;
  // The requests waiting at each /gate/<n>, in arrival order.
  absl::flat_hash_map<int64_t, std::vector<Connection*>> gates_;

  mutable absl::Mutex mu_;
  HttpTestServerStats stats_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<HttpTestServer>> HttpTestServer::Start(
    const HttpTestServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  absl::StatusOr<int> port = impl->Listen(options.host, options.port);
  if (!port.ok()) return port.status();
  return std::unique_ptr<HttpTestServer>(
      new HttpTestServer(options.host, *port, std::move(impl)));
}

HttpTestServer::HttpTestServer(std::string host, int port,
                               std::unique_ptr<Impl> impl)
    : host_(std::move(host)), port_(port), impl_(std::move(impl)) {
  absl::MutexLock lock(&stop_mu_);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "http-test-srv");
    impl_->Run();
  });
}

HttpTestServer::~HttpTestServer() { Stop(); }

std::string HttpTestServer::address() const {
  if (absl::StrContains(host_, ':'))
    return absl::StrCat("[", host_, "]:", port_);
  return absl::StrCat(host_, ":", port_);
}

std::string HttpTestServer::Url(absl::string_view path) const {
  return absl::StrCat("http://", address(), path);
}

void HttpTestServer::Stop() {
  absl::MutexLock lock(&stop_mu_);
  if (!thread_.joinable()) return;
  impl_->RequestStop();
  thread_.join();
}

HttpTestServerStats HttpTestServer::stats() const { return impl_->stats(); }

bool HttpTestServer::WaitForActiveRequests(int n,
                                           absl::Duration timeout) const {
  return impl_->WaitForStats(
      [n](const HttpTestServerStats& stats) {
        return stats.active_requests >= n;
      },
      timeout);
}

bool HttpTestServer::WaitForStats(
    const std::function<bool(const HttpTestServerStats&)>& done,
    absl::Duration timeout) const {
  return impl_->WaitForStats(done, timeout);
}

std::string HttpTestServer::BytesBody(int64_t n) {
  std::string body(static_cast<size_t>(n), '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = 'a' + i % 26;
  return body;
}

}  // namespace qfarm::testing
