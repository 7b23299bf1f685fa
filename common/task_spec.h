// Task specs: the `KIND:ARG[@OPTION=VALUE...]` text form of a task, shared by
// the CLI, the client library and the coordinator.
//
//   sleep:1s  sleep:250ms  echo:hello  cpu:20000  sleep:5s@timeout=1s
//
// Options follow the last '@' when it is followed by a known option name:
// `timeout=DURATION`, `attempts=N` (several joined with ',').
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm {

// Upper bounds that keep one task from occupying a slot forever or asking
// for absurd work. The coordinator enforces the same ones.
struct TaskLimits {
  absl::Duration max_sleep = absl::Hours(24);
  absl::Duration max_timeout = absl::Hours(24);
  int64_t max_cpu_units = 1'000'000'000;
  size_t max_text_bytes = 1 << 20;
  uint32_t max_attempts = 100;
};

// Parses one spec. INVALID_ARGUMENT naming the spec and the rule otherwise.
absl::StatusOr<v1::Task> ParseTaskSpec(absl::string_view spec,
                                       const TaskLimits& limits = {});

// Checks a task received over the wire. INVALID_ARGUMENT naming the field,
// the value and the rule.
absl::Status ValidateTask(const v1::Task& task, const TaskLimits& limits = {});

// The spec text of a task: FormatTaskSpec(ParseTaskSpec(s)) parses back to
// the same task.
std::string FormatTaskSpec(const v1::Task& task);

// "sleep", "echo", "cpu", "http"; "unknown" otherwise.
absl::string_view TaskKindName(v1::TaskKind kind);

// "ok", "failed", "timed_out", "cancelled", "queued", "running", "unknown".
absl::string_view TaskStateName(v1::TaskState state);

// Whether the state is final (ok, failed, timed out, cancelled).
bool IsFinal(v1::TaskState state);

// Parses "250ms", "1s", "1.5s", "2m". Bare numbers are refused: a unit is
// always required.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text);

// Milliseconds as the shortest exact text: 1000 -> "1s", 250 -> "250ms".
std::string FormatMillis(int64_t ms);

}  // namespace qfarm
