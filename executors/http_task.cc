#include "executors/http_task.h"

#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"

namespace qfarm::executors {
namespace {

TaskOutcome Failed(std::string error) {
  return {
      .state = v1::TASK_STATE_FAILED, .value = {}, .error = std::move(error)};
}

// SHA-256, fetched once: OpenSSL 3 would look it up again on every init.
const EVP_MD* Sha256() {
  static const EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    QFARM_CHECK(fetched != nullptr) << "OpenSSL cannot provide SHA-256";
    return fetched;
  }();
  return md;
}

template <typename T>
void SetOption(CURL* easy, CURLoption option, T value) {
  const CURLcode code = curl_easy_setopt(easy, option, value);
  QFARM_CHECK(code == CURLE_OK) << "curl_easy_setopt(" << option
                                << ") failed: " << curl_easy_strerror(code);
}

// The multi handle of the calling thread, so that the thread's transfers
// share one connection cache. Cleaned up (connections closed) when the
// thread exits.
class ThreadMulti {
 public:
  ThreadMulti() {
    InitCurlOnce();
    multi_ = curl_multi_init();
    QFARM_CHECK(multi_ != nullptr) << "curl_multi_init failed";
  }
  ~ThreadMulti() { curl_multi_cleanup(multi_); }
  ThreadMulti(const ThreadMulti&) = delete;
  ThreadMulti& operator=(const ThreadMulti&) = delete;

  CURLM* get() const { return multi_; }

 private:
  CURLM* multi_;
};

CURLM* ThisThreadMulti() {
  thread_local ThreadMulti multi;
  return multi.get();
}

}  // namespace

void InitCurlOnce() {
  static const bool initialized = [] {
    const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
    QFARM_CHECK(code == CURLE_OK)
        << "curl_global_init failed: " << curl_easy_strerror(code);
    return true;
  }();
  (void)initialized;
}

HttpRequest::HttpRequest(const v1::Task& task, std::string* body)
    : timeout_ms_(task.timeout_ms() > 0 ? task.timeout_ms()
                                        : kHttpDefaultTimeoutMs),
      easy_((InitCurlOnce(), curl_easy_init())),
      sha256_(EVP_MD_CTX_new()),
      body_(body) {
  QFARM_CHECK(easy_ != nullptr) << "curl_easy_init failed";
  QFARM_CHECK(sha256_ != nullptr &&
              EVP_DigestInit_ex(sha256_, Sha256(), nullptr) == 1)
      << "SHA-256 init failed";
  SetOption(easy_, CURLOPT_URL, task.text().c_str());
  SetOption(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
  SetOption(easy_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SetOption(easy_, CURLOPT_FOLLOWLOCATION, 0L);
  SetOption(easy_, CURLOPT_HTTPGET, 1L);
  // No signals: transfers run on many threads.
  SetOption(easy_, CURLOPT_NOSIGNAL, 1L);
  SetOption(easy_, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
  SetOption(easy_, CURLOPT_USERAGENT, "qfarm");
  SetOption(easy_, CURLOPT_ERRORBUFFER, error_);
  SetOption(easy_, CURLOPT_WRITEFUNCTION, &HttpRequest::OnBody);
  SetOption(easy_, CURLOPT_WRITEDATA, this);
}

HttpRequest::~HttpRequest() {
  curl_easy_cleanup(easy_);
  EVP_MD_CTX_free(sha256_);
}

size_t HttpRequest::OnBody(char* data, size_t size, size_t count, void* self) {
  auto* request = static_cast<HttpRequest*>(self);
  const size_t n = size * count;
  if (EVP_DigestUpdate(request->sha256_, data, n) != 1) return 0;  // Aborts.
  if (request->body_ != nullptr) {
    if (request->body_->size() + n > kMaxKeptBody) {
      request->body_too_long_ = true;
      return 0;  // Aborts.
    }
    request->body_->append(data, n);
  }
  request->bytes_ += static_cast<int64_t>(n);
  return n;
}

TaskOutcome HttpRequest::Finish(CURLcode code) {
  if (code == CURLE_OPERATION_TIMEDOUT) return TimedOutOutcome(timeout_ms_);
  if (body_too_long_) {
    return Failed(
        absl::StrCat("body over the limit of ", kMaxKeptBody, " bytes"));
  }
  if (code != CURLE_OK) {
    return Failed(
        absl::StrCat(error_[0] != '\0' ? error_ : curl_easy_strerror(code),
                     " (curl error ", static_cast<int>(code), ")"));
  }
  long status = 0;
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    std::string error = absl::StrCat("HTTP ", status);
    char* location = nullptr;
    if (status >= 300 && status <= 399 &&
        curl_easy_getinfo(easy_, CURLINFO_REDIRECT_URL, &location) ==
            CURLE_OK &&
        location != nullptr) {
      absl::StrAppend(&error, ": redirect to ", location, " not followed");
    }
    return Failed(std::move(error));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  QFARM_CHECK(EVP_DigestFinal_ex(sha256_, digest, &length) == 1 && length >= 8)
      << "SHA-256 failed";
  curl_off_t ttfb_us = 0;
  curl_off_t total_us = 0;
  curl_easy_getinfo(easy_, CURLINFO_STARTTRANSFER_TIME_T, &ttfb_us);
  curl_easy_getinfo(easy_, CURLINFO_TOTAL_TIME_T, &total_us);
  return {
      .state = v1::TASK_STATE_OK,
      .value = FormatHttpValue(status, bytes_,
                               absl::BytesToHexString(absl::string_view(
                                   reinterpret_cast<const char*>(digest), 8)),
                               ttfb_us, total_us),
      .error = {}};
}

TaskOutcome RunHttpBlocking(const v1::Task& task, const CancelToken& cancel) {
  if (cancel.cancelled()) return CancelledOutcome("job cancelled");
  HttpRequest request(task);
  CURLM* multi = ThisThreadMulti();
  CURLMcode status = curl_multi_add_handle(multi, request.easy());
  if (status != CURLM_OK) {
    return Failed(absl::StrCat("curl: ", curl_multi_strerror(status)));
  }
  std::optional<CURLcode> result;
  while (status == CURLM_OK && !cancel.cancelled()) {
    int running = 0;
    status = curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg == CURLMSG_DONE &&
          message->easy_handle == request.easy()) {
        result = message->data.result;
      }
    }
    if (result) break;
    // Returns early on socket activity; the bound is how long a
    // cancellation may wait.
    if (status == CURLM_OK) {
      status = curl_multi_poll(multi, nullptr, 0, kHttpCancelPollMs, nullptr);
    }
  }
  // Stops the transfer if it is still running.
  curl_multi_remove_handle(multi, request.easy());
  if (cancel.cancelled()) return CancelledOutcome("job cancelled");
  if (!result) {
    return Failed(absl::StrCat("curl: ", curl_multi_strerror(status)));
  }
  return request.Finish(*result);
}

std::string FormatHttpValue(int64_t status, int64_t bytes,
                            absl::string_view sha256_hex16, int64_t ttfb_us,
                            int64_t total_us) {
  return absl::StrFormat(
      "status=%d bytes=%d sha256=%s ttfb_ms=%.1f total_ms=%.1f", status, bytes,
      sha256_hex16, ttfb_us / 1000.0, total_us / 1000.0);
}

}  // namespace qfarm::executors
