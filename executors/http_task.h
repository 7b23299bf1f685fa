// The http task kind: one GET through libcurl.
//
//   CancelToken cancel;
//   TaskOutcome outcome = RunHttpBlocking(task, cancel);   // serial, thread
//   // async: HttpMulti (executors/http_multi.h) runs HttpRequests on the loop.
//
// Rules, the same in every mode:
//   - only http:// and https:// URLs, also for redirects; redirects are not
//     followed (a 3xx is a non-2xx status);
//   - the whole transfer is bounded by the task's timeout_ms, or by
//     kHttpDefaultTimeoutMs when it has none; past it: TIMED_OUT
//     ("timed out after <N>ms");
//   - a 2xx status is OK with the value
//       "status=200 bytes=1234 sha256=<first 16 hex of the body's SHA-256>
//        ttfb_ms=12.3 total_ms=104.2"
//     (one line; the first three fields are deterministic, the times are
//     not); any other status is FAILED with "HTTP 503" (a 3xx adds
//     ": redirect to <URL> not followed");
//   - a connection or protocol error is FAILED with curl's message and code,
//     e.g. "Empty reply from server (curl error 52)".
// Proxies are taken from the standard environment variables, as curl does.
#pragma once

#include <curl/curl.h>
#include <openssl/evp.h>

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "executors/cancel_token.h"
#include "executors/task_outcome.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {

// The time limit of an http task without timeout_ms.
inline constexpr int64_t kHttpDefaultTimeoutMs = 30'000;

// Initializes libcurl for the process on first call; later calls return at
// once. Thread-safe. Everything in qfarm that uses curl calls it first.
void InitCurlOnce();

// One GET of a validated http task: an easy handle configured for it, the
// body's size and digest as it arrives, and the outcome once curl is done.
// The handle is not added to any multi handle; the caller runs it.
// Thread-compatible: one thread at a time.
class HttpRequest {
 public:
  // The body of a kept answer is limited to this many bytes.
  static constexpr size_t kMaxKeptBody = 16 << 20;

  // With `body`, the body is also appended to it (a longer one than
  // kMaxKeptBody fails the transfer); it must outlive the request.
  explicit HttpRequest(const v1::Task& task, std::string* body = nullptr);
  ~HttpRequest();
  HttpRequest(const HttpRequest&) = delete;
  HttpRequest& operator=(const HttpRequest&) = delete;

  CURL* easy() const { return easy_; }

  // The outcome of the finished transfer whose result code is `code`.
  TaskOutcome Finish(CURLcode code);

 private:
  static size_t OnBody(char* data, size_t size, size_t count, void* self);

  const int64_t timeout_ms_;
  CURL* const easy_;
  EVP_MD_CTX* const sha256_;
  std::string* const body_;
  bool body_too_long_ = false;
  int64_t bytes_ = 0;
  char error_[CURL_ERROR_SIZE] = {};
};

// Runs the GET on the calling thread, on a multi handle of this thread (so
// connections are kept alive and reused between the thread's tasks).
// Polls `cancel` at least every kHttpCancelPollMs; CANCELLED if it is set.
TaskOutcome RunHttpBlocking(const v1::Task& task, const CancelToken& cancel);
inline constexpr int kHttpCancelPollMs = 20;

// The OK value of a transfer; see above.
std::string FormatHttpValue(int64_t status, int64_t bytes,
                            absl::string_view sha256_hex16, int64_t ttfb_us,
                            int64_t total_us);

}  // namespace qfarm::executors
