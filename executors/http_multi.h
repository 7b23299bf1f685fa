// HTTP GETs driven by an Asio event loop through libcurl's multi-socket
// interface: curl says which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
// when to wake it (CURLMOPT_TIMERFUNCTION); the loop watches them with
// async_wait on a posix::stream_descriptor and one steady_timer, and hands
// readiness back with curl_multi_socket_action(). Thousands of transfers in
// flight cost one thread; connections are kept alive and reused.
//
//   HttpMulti http(io);                        // on the loop thread
//   HttpMulti::TransferId id = http.Start(task, [](TaskOutcome outcome) {
//     ... called later on the loop thread, once ...
//   });
//   http.Cancel(id);                           // or: stop it at once
//
// Each transfer follows the rules of executors/http_task.h.
//
// Execution model: loop thread only. Every method, the constructor and the
// destructor must run on the thread that runs `io`; not thread-safe.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "asio/io_context.hpp"
#include "asio/steady_timer.hpp"
#include "executors/task_outcome.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {

class HttpMulti {
 public:
  using TransferId = uint64_t;
  using Done = std::function<void(TaskOutcome)>;

  explicit HttpMulti(asio::io_context& io);
  // Stops unfinished transfers without calling their callbacks and closes
  // every connection.
  ~HttpMulti();
  HttpMulti(const HttpMulti&) = delete;
  HttpMulti& operator=(const HttpMulti&) = delete;

  // Starts a GET of a validated http task. `done` is called exactly once,
  // from a later turn of the loop (never from inside Start() or Cancel()),
  // unless the transfer is cancelled first. With `body`, the body is kept
  // there too (see HttpRequest); it must outlive the transfer.
  TransferId Start(const v1::Task& task, Done done,
                   std::string* body = nullptr);

  // Stops the transfer at once (its handle leaves the multi handle and its
  // connection is closed); its `done` is never called. No effect on unknown
  // or finished transfers.
  void Cancel(TransferId id);

  // Transfers started and neither finished nor cancelled.
  size_t in_flight() const { return transfers_.size(); }

 private:
  struct Transfer;
  struct Watch;

  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* self,
                      void* socket_data);
  static int OnTimer(CURLM* multi, long timeout_ms, void* self);
  static int OnCloseSocket(void* self, curl_socket_t fd);

  // Watches `fd` for what curl asked (CURL_POLL_IN/OUT/INOUT).
  void WatchSocket(curl_socket_t fd, int what);
  // Stops watching `fd`; the descriptor is released, not closed.
  void ForgetSocket(curl_socket_t fd);
  // Starts the waits `watch` needs and does not have.
  void Arm(const std::shared_ptr<Watch>& watch);
  // Tells curl about `fd` (or its timer, for CURL_SOCKET_TIMEOUT), then
  // completes the transfers that finished.
  void Act(curl_socket_t fd, int events);
  void CompleteFinished();
  void ScheduleTimer(long timeout_ms);

  asio::io_context& io_;
  CURLM* multi_;
  asio::steady_timer timer_;
  // False once the destructor runs; handlers still queued check it before
  // touching `this`.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  TransferId next_id_ = 1;
  absl::flat_hash_map<TransferId, std::unique_ptr<Transfer>> transfers_;
  absl::flat_hash_map<curl_socket_t, std::shared_ptr<Watch>> watches_;
};

}  // namespace qfarm::executors
