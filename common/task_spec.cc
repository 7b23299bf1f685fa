#include "common/task_spec.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/abbreviate.h"
#include "common/status_macros.h"

namespace qfarm {
namespace {

absl::Status Invalid(absl::string_view spec, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("task spec \"", Abbreviate(spec), "\": ", why));
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

bool IsKindChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

bool IsBuiltInKind(absl::string_view kind) {
  return kind == kSleepKind || kind == kEchoKind || kind == kCpuKind ||
         kind == kHttpKind;
}

absl::Status ValidateKindName(absl::string_view kind) {
  if (kind.empty()) {
    return absl::InvalidArgumentError("kind name is empty");
  }
  if (kind.size() > kMaxKindNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind name \"", absl::CHexEscape(kind.substr(0, 16)), "...\" of ",
        kind.size(), " bytes is over the maximum of ", kMaxKindNameBytes));
  }
  if (!absl::ascii_isalpha(static_cast<unsigned char>(kind[0])) ||
      !std::all_of(kind.begin(), kind.end(), IsKindChar)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind name \"", absl::CHexEscape(kind),
        "\" must be letters, digits, '_', '.' and '-', starting with a "
        "letter"));
  }
  return absl::OkStatus();
}

absl::Status ValidateOfferedKinds(const std::vector<std::string>& kinds) {
  if (kinds.empty()) {
    return absl::InvalidArgumentError(
        "hello.kinds is empty: a worker must offer at least one kind");
  }
  if (kinds.size() > kMaxOfferedKinds) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello.kinds lists ", kinds.size(),
                     " kinds, over the maximum of ", kMaxOfferedKinds));
  }
  for (const std::string& kind : kinds) {
    if (absl::Status valid = ValidateKindName(kind); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("hello.kinds: ", valid.message()));
    }
  }
  return absl::OkStatus();
}

TaskLimits NoTaskLimits() {
  return {.max_sleep = absl::InfiniteDuration(),
          .max_timeout = absl::InfiniteDuration(),
          .max_cpu_units = INT64_MAX,
          .max_text_bytes = SIZE_MAX,
          .max_attempts = UINT32_MAX,
          .max_value_bytes = SIZE_MAX};
}

void SetMaxPayloadBytes(size_t bytes, TaskLimits* limits) {
  limits->max_text_bytes = bytes;
  limits->max_value_bytes = std::max(limits->max_value_bytes, bytes);
}

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text) {
  absl::Duration d;
  if (text.empty()) {
    return absl::InvalidArgumentError("empty duration");
  }
  const char last = text.back();
  if (last >= '0' && last <= '9') {
    return absl::InvalidArgumentError(
        absl::StrCat("duration \"", Abbreviate(text),
                     "\" needs a unit, for example 250ms or 1s"));
  }
  if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", Abbreviate(text),
                     "\" is not a duration (examples: 250ms, 1s, 1.5s, 2m)"));
  }
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration \"", Abbreviate(text), "\" is negative"));
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

  if (absl::Status name = ValidateKindName(kind); !name.ok()) {
    return Invalid(spec, name.message());
  }
  v1::Task task;
  task.set_kind(std::string(kind));
  if (kind == kSleepKind) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(arg);
    if (!d.ok()) return Invalid(spec, d.status().message());
    task.set_arg(absl::ToInt64Milliseconds(*d));
    if (*d != absl::Milliseconds(task.arg())) {
      return Invalid(spec, "sleep has millisecond resolution");
    }
  } else if (kind == kCpuKind) {
    int64_t units = 0;
    if (!absl::SimpleAtoi(arg, &units)) {
      return Invalid(spec, "cpu takes a whole number of units, like cpu:20000");
    }
    task.set_arg(units);
  } else {
    // echo's payload, http's URL, another kind's argument.
    task.set_text(std::string(arg));
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
  return ValidateTask(task, task.kind(), limits);
}

absl::Status ValidateTask(const v1::Task& task, absl::string_view kind,
                          const TaskLimits& limits) {
  if (kind == kSleepKind) {
    if (task.arg() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("sleep arg ", task.arg(), " ms is negative"));
    }
    if (absl::Milliseconds(task.arg()) > limits.max_sleep) {
      return absl::InvalidArgumentError(
          absl::StrCat("sleep arg ", task.arg(), " ms is over the maximum of ",
                       absl::FormatDuration(limits.max_sleep)));
    }
  } else if (kind == kCpuKind) {
    if (task.arg() < 0 || task.arg() > limits.max_cpu_units) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cpu arg ", task.arg(), " is outside 0..", limits.max_cpu_units));
    }
  } else if (kind == kHttpKind) {
    if (!ValidHttpUrl(task.text())) {
      return absl::InvalidArgumentError(
          absl::StrCat("http url \"", Abbreviate(task.text()),
                       "\" must be an http:// or https:// URL with a host"));
    }
  } else if (kind != kEchoKind) {
    RETURN_IF_ERROR(ValidateKindName(kind));
  }
  if (!task.data().empty() && IsBuiltInKind(kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kind, " takes no data (it has ", task.data().size(), " bytes)"));
  }
  if (task.data().size() > limits.max_text_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("data of ", task.data().size(),
                     " bytes is over the maximum of ", limits.max_text_bytes));
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
  if (task.kind() == kSleepKind) {
    out = absl::StrCat(task.kind(), ":", FormatMillis(task.arg()));
  } else if (task.kind() == kCpuKind) {
    out = absl::StrCat(task.kind(), ":", task.arg());
  } else {
    out = absl::StrCat(task.kind(), ":", task.text());
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
