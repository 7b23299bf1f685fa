#include "executors/http_multi.h"

#include <unistd.h>

#include <chrono>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "asio/error.hpp"
#include "asio/posix/stream_descriptor.hpp"
#include "asio/post.hpp"
#include "common/logging.h"
#include "executors/http_task.h"

namespace qfarm::executors {

struct HttpMulti::Transfer {
  Transfer(TransferId id, const v1::Task& task, Done done, std::string* body)
      : id(id), request(task, body), done(std::move(done)) {}

  const TransferId id;
  HttpRequest request;
  Done done;
  // Whether the easy handle is in the multi handle.
  bool added = false;
};

// One socket curl asked us to watch.
struct HttpMulti::Watch {
  Watch(asio::io_context& io, curl_socket_t fd) : descriptor(io), fd(fd) {}

  // Borrowed: released, never closed, by us; curl closes the socket.
  asio::posix::stream_descriptor descriptor;
  const curl_socket_t fd;
  // CURL_POLL_IN / OUT / INOUT: what curl wants to hear about.
  int what = 0;
  // Whether a wait is pending, by direction (kDirections' index).
  bool waiting[2] = {false, false};
  // Set when curl stops caring about the socket; pending waits then end
  // with operation_aborted and are ignored.
  bool forgotten = false;
};

namespace {

// The two directions a socket is watched in.
struct Direction {
  int poll;    // CURL_POLL_IN or CURL_POLL_OUT: curl wants it.
  int select;  // CURL_CSELECT_IN or CURL_CSELECT_OUT: it happened.
  asio::posix::descriptor_base::wait_type wait;
};
constexpr Direction kDirections[2] = {
    {CURL_POLL_IN, CURL_CSELECT_IN, asio::posix::descriptor_base::wait_read},
    {CURL_POLL_OUT, CURL_CSELECT_OUT, asio::posix::descriptor_base::wait_write},
};

template <typename T>
void SetMultiOption(CURLM* multi, CURLMoption option, T value) {
  const CURLMcode code = curl_multi_setopt(multi, option, value);
  QFARM_CHECK(code == CURLM_OK) << "curl_multi_setopt(" << option
                                << ") failed: " << curl_multi_strerror(code);
}

}  // namespace

HttpMulti::HttpMulti(asio::io_context& io)
    : io_(io), multi_((InitCurlOnce(), curl_multi_init())), timer_(io) {
  QFARM_CHECK(multi_ != nullptr) << "curl_multi_init failed";
  SetMultiOption(multi_, CURLMOPT_SOCKETFUNCTION, &HttpMulti::OnSocket);
  SetMultiOption(multi_, CURLMOPT_SOCKETDATA, this);
  SetMultiOption(multi_, CURLMOPT_TIMERFUNCTION, &HttpMulti::OnTimer);
  SetMultiOption(multi_, CURLMOPT_TIMERDATA, this);
}

HttpMulti::~HttpMulti() {
  *alive_ = false;
  for (auto& [id, transfer] : transfers_) {
    if (transfer->added) {
      curl_multi_remove_handle(multi_, transfer->request.easy());
    }
  }
  transfers_.clear();
  for (auto& [fd, watch] : watches_) {
    watch->forgotten = true;
    watch->descriptor.release();
  }
  watches_.clear();
  timer_.cancel();
  // Cleaning up closes the cached connections; nothing is left to watch.
  SetMultiOption(multi_, CURLMOPT_SOCKETFUNCTION,
                 static_cast<curl_socket_callback>(nullptr));
  SetMultiOption(multi_, CURLMOPT_TIMERFUNCTION,
                 static_cast<curl_multi_timer_callback>(nullptr));
  curl_multi_cleanup(multi_);
}

HttpMulti::TransferId HttpMulti::Start(const v1::Task& task, Done done,
                                       std::string* body) {
  const TransferId id = next_id_++;
  auto owned = std::make_unique<Transfer>(id, task, std::move(done), body);
  Transfer* transfer = owned.get();
  transfers_.emplace(id, std::move(owned));
  CURL* easy = transfer->request.easy();
  curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer);
  // So that a socket curl closes is never left registered with the loop.
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION,
                   &HttpMulti::OnCloseSocket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
  const CURLMcode status = curl_multi_add_handle(multi_, easy);
  if (status == CURLM_OK) {
    transfer->added = true;
    return id;
  }
  // Reported from a later turn, as promised, unless cancelled before.
  asio::post(io_, [this, alive = alive_, id,
                   error = std::string(curl_multi_strerror(status))] {
    if (!*alive) return;
    auto it = transfers_.find(id);
    if (it == transfers_.end()) return;
    Done done = std::move(it->second->done);
    transfers_.erase(it);
    done({.state = v1::TASK_STATE_FAILED,
          .value = {},
          .error = absl::StrCat("curl: ", error)});
  });
  return id;
}

void HttpMulti::Cancel(TransferId id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  std::unique_ptr<Transfer> transfer = std::move(it->second);
  transfers_.erase(it);
  if (transfer->added) {
    curl_multi_remove_handle(multi_, transfer->request.easy());
  }
}

int HttpMulti::OnSocket(CURL* /*easy*/, curl_socket_t fd, int what, void* self,
                        void* /*socket_data*/) {
  auto* multi = static_cast<HttpMulti*>(self);
  if (what == CURL_POLL_REMOVE) {
    multi->ForgetSocket(fd);
  } else {
    multi->WatchSocket(fd, what);
  }
  return 0;
}

int HttpMulti::OnTimer(CURLM* /*multi*/, long timeout_ms, void* self) {
  static_cast<HttpMulti*>(self)->ScheduleTimer(timeout_ms);
  return 0;
}

int HttpMulti::OnCloseSocket(void* self, curl_socket_t fd) {
  static_cast<HttpMulti*>(self)->ForgetSocket(fd);
  return close(fd);
}

void HttpMulti::WatchSocket(curl_socket_t fd, int what) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) {
    auto watch = std::make_shared<Watch>(io_, fd);
    std::error_code error;
    watch->descriptor.assign(fd, error);
    if (error) {
      // The transfer then ends by its timeout.
      QFARM_LOG(ERROR) << "http: cannot watch socket " << fd << ": "
                       << error.message();
      return;
    }
    it = watches_.emplace(fd, std::move(watch)).first;
  }
  const std::shared_ptr<Watch> watch = it->second;
  watch->what = what;
  Arm(watch);
}

void HttpMulti::ForgetSocket(curl_socket_t fd) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  const std::shared_ptr<Watch> watch = std::move(it->second);
  watches_.erase(it);
  watch->forgotten = true;
  watch->descriptor.release();  // Cancels its waits; curl owns the fd.
}

void HttpMulti::Arm(const std::shared_ptr<Watch>& watch) {
  for (int d = 0; d < 2; ++d) {
    const Direction& direction = kDirections[d];
    if ((watch->what & direction.poll) == 0 || watch->waiting[d]) continue;
    watch->waiting[d] = true;
    watch->descriptor.async_wait(
        direction.wait,
        [this, alive = alive_, watch, d](const std::error_code& error) {
          const Direction& direction = kDirections[d];
          watch->waiting[d] = false;
          if (!*alive || watch->forgotten) return;
          if ((watch->what & direction.poll) == 0) return;  // Not wanted now.
          if (error) {
            // The descriptor cannot be waited on; let curl find out rather
            // than waiting again (which would fail again at once).
            QFARM_LOG(WARNING) << "http: waiting on socket " << watch->fd
                               << " failed: " << error.message();
            Act(watch->fd, CURL_CSELECT_ERR);
            return;
          }
          Act(watch->fd, direction.select);
          if (!watch->forgotten) Arm(watch);
        });
  }
}

void HttpMulti::ScheduleTimer(long timeout_ms) {
  if (timeout_ms < 0) {
    timer_.cancel();
    return;
  }
  // Cancels the previous wait, whose handler then ignores the abort.
  timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  timer_.async_wait([this, alive = alive_](const std::error_code& error) {
    if (!*alive || error == asio::error::operation_aborted) return;
    Act(CURL_SOCKET_TIMEOUT, 0);
  });
}

void HttpMulti::Act(curl_socket_t fd, int events) {
  int running = 0;
  const CURLMcode status =
      curl_multi_socket_action(multi_, fd, events, &running);
  if (status != CURLM_OK) {
    QFARM_LOG(WARNING) << "http: curl_multi_socket_action: "
                       << curl_multi_strerror(status);
  }
  CompleteFinished();
}

void HttpMulti::CompleteFinished() {
  std::vector<std::pair<TransferId, CURLcode>> finished;
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    char* transfer = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
    finished.emplace_back(reinterpret_cast<Transfer*>(transfer)->id,
                          message->data.result);
  }
  for (const auto& [id, code] : finished) {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) continue;
    std::unique_ptr<Transfer> transfer = std::move(it->second);
    transfers_.erase(it);
    curl_multi_remove_handle(multi_, transfer->request.easy());
    TaskOutcome outcome = transfer->request.Finish(code);
    Done done = std::move(transfer->done);
    transfer.reset();
    done(std::move(outcome));
  }
}

}  // namespace qfarm::executors
