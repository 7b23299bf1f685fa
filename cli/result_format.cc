#include "cli/result_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/task_spec.h"

namespace qfarm::client {
namespace {

absl::string_view JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_DONE:
      return "done";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

// Length of the valid UTF-8 sequence at text[i], or 0.
size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  size_t n = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
    n = 2;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
  } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
    n = 4;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

std::string ExecutorName(const v1::TaskResult& result) {
  if (result.worker().empty()) return result.executor();
  if (result.executor().empty()) return result.worker();
  return absl::StrCat(result.worker(), "/", result.executor());
}

std::string FormatResultText(const v1::TaskResult& result) {
  const bool ok = result.state() == v1::TASK_STATE_OK;
  const std::string executor = ExecutorName(result);
  return absl::StrFormat(
      "%4d  %-9s  %-20s  %s", result.index(), TaskStateName(result.state()),
      executor.empty() ? absl::string_view("-") : absl::string_view(executor),
      ok ? result.value() : result.error());
}

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    switch (c) {
      case '"':
        out.append("\\\"", 2);
        ++i;
        continue;
      case '\\':
        out.append("\\\\", 2);
        ++i;
        continue;
      case '\n':
        out.append("\\n", 2);
        ++i;
        continue;
      case '\r':
        out.append("\\r", 2);
        ++i;
        continue;
      case '\t':
        out.append("\\t", 2);
        ++i;
        continue;
      default:
        break;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out.append("\\ufffd", 6);  // Invalid byte: the replacement character.
      ++i;
      continue;
    }
    out.append(text.data() + i, n);
    i += n;
  }
  out.push_back('"');
  return out;
}

std::string FormatResultJson(const v1::TaskResult& result) {
  return absl::StrCat(
      "{\"index\":", result.index(), ",\"job_id\":", result.job_id(),
      ",\"status\":", JsonQuote(TaskStateName(result.state())),
      ",\"value\":", JsonQuote(result.value()),
      ",\"error\":", JsonQuote(result.error()),
      ",\"worker\":", JsonQuote(result.worker()),
      ",\"executor\":", JsonQuote(result.executor()),
      ",\"attempt\":", result.attempt(), ",\"queued_us\":", result.queued_us(),
      ",\"dispatched_us\":", result.dispatched_us(),
      ",\"started_us\":", result.started_us(),
      ",\"finished_us\":", result.finished_us(), "}");
}

std::string FormatJobInfo(const v1::JobInfo& info) {
  return absl::StrCat("job ", info.job_id(), ": ", JobStateName(info.state()),
                      ", ", info.total(), " tasks: ", info.queued(),
                      " queued, ", info.running(), " running, ", info.ok(),
                      " ok, ", info.failed(), " failed, ", info.timed_out(),
                      " timed out, ", info.cancelled(), " cancelled");
}

}  // namespace qfarm::client
