// A local HTTP/1.1 server for tests and benchmarks of the http task kind:
// endpoints that delay, fail, return large bodies, close early or hang.
//
//   absl::StatusOr<std::unique_ptr<HttpTestServer>> server =
//       HttpTestServer::Start();                  // 127.0.0.1, port 0
//   std::string url = (*server)->Url("/delay/100");
//   ... GET it ...
//   (*server)->Stop();                            // or the destructor
//
// Endpoints (any method is answered alike; a request body is skipped):
//   /delay/<ms>     200 after <ms> milliseconds, body "delayed <ms>ms\n". A
//                   timer, not a thread: thousands of requests wait at once.
//   /status/<code>  that status (200..599), body "status <code>\n" (no body
//                   for 204 and 304)
//   /bytes/<n>      200 with the n bytes of BytesBody(n)
//   /close          closes the connection without a response
//   /hang           never answers; the connection stays open until the
//                   client closes it or Stop()
//   /gate/<n>       200 once n requests wait at /gate/<n> at the same time
//                   (the nth opens it for all), body "gate <n>\n"; proves
//                   that a client had n requests in flight at once, without
//                   timing. A waiter whose client went away still counts.
//   anything else   404
// Connections are kept alive (HTTP/1.1) unless the request says
// "Connection: close" or is HTTP/1.0 without "Connection: keep-alive".
//
// Execution model: one Asio event-loop thread serves every connection.
// Every method is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace qfarm::testing {

struct HttpTestServerOptions {
  // An IP address (no host names); traffic stays local by default.
  std::string host = "127.0.0.1";
  // 0 picks a free port; port() tells which.
  int port = 0;
};

// What the server has seen so far.
struct HttpTestServerStats {
  int64_t connections_accepted = 0;
  int64_t requests = 0;
  // Connections open now, and the most open at once.
  int open_connections = 0;
  int max_open_connections = 0;
  // Requests received and not yet answered (or closed), now and at most.
  int active_requests = 0;
  int max_active_requests = 0;
};

class HttpTestServer {
 public:
  // Binds, listens and starts the loop thread. UNAVAILABLE if the address
  // cannot be bound, INVALID_ARGUMENT for a bad host.
  static absl::StatusOr<std::unique_ptr<HttpTestServer>> Start(
      const HttpTestServerOptions& options = {});

  ~HttpTestServer();  // Calls Stop().
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // "HOST:PORT".
  std::string address() const;
  // "http://HOST:PORT" + path; `path` starts with '/'.
  std::string Url(absl::string_view path) const;

  // Closes the listener and every connection (hanging and delayed ones
  // included), then joins the loop thread. Idempotent.
  void Stop();

  HttpTestServerStats stats() const;

  // Waits until `n` requests are active at once; false after `timeout`.
  bool WaitForActiveRequests(int n, absl::Duration timeout) const;
  // Waits until `done(stats())` holds; false after `timeout`. `done` runs
  // under the server's lock and must not call back into the server.
  bool WaitForStats(const std::function<bool(const HttpTestServerStats&)>& done,
                    absl::Duration timeout) const;

  // The body of /bytes/<n>: byte i is 'a' + i % 26.
  static std::string BytesBody(int64_t n);

 private:
  class Impl;

  HttpTestServer(std::string host, int port, std::unique_ptr<Impl> impl);

  const std::string host_;
  const int port_;
  std::unique_ptr<Impl> impl_;

  // Serializes Stop() calls around the join.
  absl::Mutex stop_mu_;
  std::thread thread_ ABSL_GUARDED_BY(stop_mu_);
};

}  // namespace qfarm::testing
