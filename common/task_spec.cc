#include "common/task_spec.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace qfarm {
namespace {

absl::Status Invalid(absl::string_view spec, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("task spec \"", spec, "\": ", why));
}

bool IsOptionList(absl::string_view text) {
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    if (!absl::StartsWith(part, "timeout=") &&
        !absl::StartsWith(part, "attempts=")) {
      return false;
    }
  }
  return !text.empty();
}

bool ValidHttpUrl(absl::string_view url) {
  absl::string_view rest;
  if (absl::StartsWith(url, "http://")) {
    rest = url.substr(7);
  } else if (absl::StartsWith(url, "https://")) {
    rest = url.substr(8);
  } else {
    return false;
  }
  const size_t end = rest.find_first_of("/?#");
  absl::string_view host = rest.substr(0, end);
  return !host.empty() && host[0] != ':';
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text) {
  absl::Duration d;
  if (text.empty()) {
    return absl::InvalidArgumentError("empty duration");
  }
  const char last = text.back();
  if (last >= '0' && last <= '9') {
    return absl::InvalidArgumentError(absl::StrCat(
        "duration \"", text, "\" needs a unit, for example 250ms or 1s"));
  }
  if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text, "\" is not a duration (examples: 250ms, 1s, 1.5s, 2m)"));
  }
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration \"", text, "\" is negative"));
  }
  return d;
}

absl::StatusOr<v1::Task> ParseTaskSpec(absl::string_view spec,
                                       const TaskLimits& limits) {
  const size_t colon = spec.find(':');
  if (colon == absl::string_view::npos) {
    return Invalid(spec,
                   "expected KIND:ARG, for example sleep:1s, echo:hi, "
                   "cpu:20000, http:http://127.0.0.1:8080/");
  }
  absl::string_view kind = spec.substr(0, colon);
  absl::string_view arg = spec.substr(colon + 1);
  absl::string_view options;
  const size_t at = arg.rfind('@');
  if (at != absl::string_view::npos && IsOptionList(arg.substr(at + 1))) {
    options = arg.substr(at + 1);
    arg = arg.substr(0, at);
  }

  v1::Task task;
  if (kind == "sleep") {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(arg);
    if (!d.ok()) return Invalid(spec, d.status().message());
    task.set_kind(v1::TASK_KIND_SLEEP);
    task.set_arg(absl::ToInt64Milliseconds(*d));
    if (*d != absl::Milliseconds(task.arg())) {
      return Invalid(spec, "sleep has millisecond resolution");
    }
  } else if (kind == "echo") {
    task.set_kind(v1::TASK_KIND_ECHO);
    task.set_text(std::string(arg));
  } else if (kind == "cpu") {
    int64_t units = 0;
    if (!absl::SimpleAtoi(arg, &units)) {
      return Invalid(spec, "cpu takes a whole number of units, like cpu:20000");
    }
    task.set_kind(v1::TASK_KIND_CPU);
    task.set_arg(units);
  } else if (kind == "http") {
    task.set_kind(v1::TASK_KIND_HTTP);
    task.set_text(std::string(arg));
  } else {
    return Invalid(spec, absl::StrCat("unknown kind \"", kind,
                                      "\" (known: sleep, echo, cpu, http)"));
  }

  if (!options.empty()) {
    for (absl::string_view option : absl::StrSplit(options, ',')) {
      if (absl::ConsumePrefix(&option, "timeout=")) {
        absl::StatusOr<absl::Duration> d = ParseDurationFlag(option);
        if (!d.ok()) return Invalid(spec, d.status().message());
        if (*d <= absl::ZeroDuration()) {
          return Invalid(spec, "timeout must be positive");
        }
        task.set_timeout_ms(
            std::max<int64_t>(1, absl::ToInt64Milliseconds(*d)));
      } else if (absl::ConsumePrefix(&option, "attempts=")) {
        uint32_t attempts = 0;
        if (!absl::SimpleAtoi(option, &attempts) || attempts == 0) {
          return Invalid(spec, "attempts must be a positive whole number");
        }
        task.set_max_attempts(attempts);
      }
    }
  }

  absl::Status valid = ValidateTask(task, limits);
  if (!valid.ok()) return Invalid(spec, valid.message());
  return task;
}

absl::Status ValidateTask(const v1::Task& task, const TaskLimits& limits) {
  switch (task.kind()) {
    case v1::TASK_KIND_SLEEP:
      if (task.arg() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("sleep arg ", task.arg(), " ms is negative"));
      }
      if (absl::Milliseconds(task.arg()) > limits.max_sleep) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sleep arg ", task.arg(), " ms is over the maximum of ",
            absl::FormatDuration(limits.max_sleep)));
      }
      break;
    case v1::TASK_KIND_CPU:
      if (task.arg() < 0 || task.arg() > limits.max_cpu_units) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cpu arg ", task.arg(), " is outside 0..", limits.max_cpu_units));
      }
      break;
    case v1::TASK_KIND_ECHO:
      break;
    case v1::TASK_KIND_HTTP:
      if (!ValidHttpUrl(task.text())) {
        return absl::InvalidArgumentError(
            absl::StrCat("http url \"", task.text(),
                         "\" must be an http:// or https:// URL with a host"));
      }
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "kind ", static_cast<int>(task.kind()), " is not a known task kind"));
  }
  if (task.text().size() > limits.max_text_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("text of ", task.text().size(),
                     " bytes is over the maximum of ", limits.max_text_bytes));
  }
  if (task.timeout_ms() < 0 ||
      absl::Milliseconds(task.timeout_ms()) > limits.max_timeout) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout_ms ", task.timeout_ms(), " is outside 0..",
                     absl::ToInt64Milliseconds(limits.max_timeout)));
  }
  if (task.max_attempts() > limits.max_attempts) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts ", task.max_attempts(),
                     " is over the maximum of ", limits.max_attempts));
  }
  return absl::OkStatus();
}

std::string FormatMillis(int64_t ms) {
  if (ms != 0 && ms % 1000 == 0) return absl::StrCat(ms / 1000, "s");
  return absl::StrCat(ms, "ms");
}

std::string FormatTaskSpec(const v1::Task& task) {
  std::string out;
  switch (task.kind()) {
    case v1::TASK_KIND_SLEEP:
      out = absl::StrCat("sleep:", FormatMillis(task.arg()));
      break;
    case v1::TASK_KIND_CPU:
      out = absl::StrCat("cpu:", task.arg());
      break;
    default:
      out = absl::StrCat(TaskKindName(task.kind()), ":", task.text());
      break;
  }
  std::string options;
  if (task.timeout_ms() > 0) {
    absl::StrAppend(&options, "timeout=", FormatMillis(task.timeout_ms()));
  }
  if (task.max_attempts() > 0) {
    absl::StrAppend(&options, options.empty() ? "" : ",",
                    "attempts=", task.max_attempts());
  }
  if (!options.empty()) absl::StrAppend(&out, "@", options);
  return out;
}

absl::string_view TaskKindName(v1::TaskKind kind) {
  switch (kind) {
    case v1::TASK_KIND_SLEEP:
      return "sleep";
    case v1::TASK_KIND_ECHO:
      return "echo";
    case v1::TASK_KIND_CPU:
      return "cpu";
    case v1::TASK_KIND_HTTP:
      return "http";
    default:
      return "unknown";
  }
}

absl::string_view TaskStateName(v1::TaskState state) {
  switch (state) {
    case v1::TASK_STATE_QUEUED:
      return "queued";
    case v1::TASK_STATE_RUNNING:
      return "running";
    case v1::TASK_STATE_OK:
      return "ok";
    case v1::TASK_STATE_FAILED:
      return "failed";
    case v1::TASK_STATE_TIMED_OUT:
      return "timed_out";
    case v1::TASK_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

bool IsFinal(v1::TaskState state) {
  return state == v1::TASK_STATE_OK || state == v1::TASK_STATE_FAILED ||
         state == v1::TASK_STATE_TIMED_OUT || state == v1::TASK_STATE_CANCELLED;
}

}  // namespace qfarm
