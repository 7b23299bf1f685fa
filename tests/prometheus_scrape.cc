#include "tests/prometheus_scrape.h"

#include <curl/curl.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace qfarm::testing {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

absl::StatusOr<std::string> Scrape(const std::string& address) {
  std::string body;
  CURL* curl = curl_easy_init();
  const std::string url = absl::StrCat("http://", address, "/metrics");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10'000L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": ", curl_easy_strerror(rc)));
  }
  return body;
}

double Sample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      const size_t start = at + series.size();
      if (start < text.size() && text[start] == ' ') {
        double value = -1;
        const size_t end = text.find('\n', start);
        if (absl::SimpleAtod(text.substr(start + 1, end - start - 1), &value)) {
          return value;
        }
      }
    }
    at += series.size();
  }
  return -1;
}

std::string AddressAfter(const std::string& line, const std::string& prefix) {
  return absl::StartsWith(line, prefix) ? line.substr(prefix.size()) : "";
}

}  // namespace qfarm::testing
