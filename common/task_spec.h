// Task specs: the `KIND:ARG[@OPTION=VALUE...]` text form of a task, shared by
// the CLI, the client library and the coordinator, and the rules a task and
// a kind name follow.
//
//   sleep:1s  sleep:250ms  echo:hello  cpu:20000  sleep:5s@timeout=1s
//   reverse:hello  action:3        (kinds a worker offers: ARG is the text)
//
// Options follow the last '@' when it is followed by a known option name:
// `timeout=DURATION`, `attempts=N` (several joined with ',').
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm {

// The built-in kinds (see proto/qfarm/v1/task.proto).
inline constexpr absl::string_view kSleepKind = "sleep";
inline constexpr absl::string_view kEchoKind = "echo";
inline constexpr absl::string_view kCpuKind = "cpu";
inline constexpr absl::string_view kHttpKind = "http";

// The longest kind name.
inline constexpr size_t kMaxKindNameBytes = 64;

// Whether `kind` is one of the built-in kinds.
bool IsBuiltInKind(absl::string_view kind);

// A kind name is 1 to kMaxKindNameBytes characters of ASCII letters, digits,
// '_', '.' and '-', starting with a letter. INVALID_ARGUMENT naming the
// kind and the rule otherwise.
absl::Status ValidateKindName(absl::string_view kind);

// The most kinds one worker may offer.
inline constexpr size_t kMaxOfferedKinds = 1024;

// Checks the kinds a worker offers in its hello: at least one, at most
// kMaxOfferedKinds, each a valid kind name (repeats are allowed).
// INVALID_ARGUMENT saying what is wrong.
absl::Status ValidateOfferedKinds(const std::vector<std::string>& kinds);

// Upper bounds that keep one task from occupying a slot forever or asking
// for absurd work. Whoever admits tasks checks them: the coordinator (its
// flags set them) for a farm, the local pool's caller for `--local`.
// Workers check none (see NoTaskLimits()): a task the coordinator accepted
// never fails on a worker for a limit (docs/ARCHITECTURE.md, "One set of
// limits").
struct TaskLimits {
  absl::Duration max_sleep = absl::Hours(24);
  absl::Duration max_timeout = absl::Hours(24);
  int64_t max_cpu_units = 1'000'000'000;
  // A task's text and data, each.
  size_t max_text_bytes = 1 << 20;
  uint32_t max_attempts = 100;
  // A result's value: a longer one fails the task.
  size_t max_value_bytes = 1 << 20;
};

// Limits that bound nothing: ValidateTask() under them checks only the
// rules a task must follow to run at all (a valid kind name, no negative
// sleep or cpu units, an http URL with a host, no data for a built-in kind,
// no negative timeout). What workers and executors check, and what the CLI
// checks before a coordinator checks its own limits.
TaskLimits NoTaskLimits();

// The most --max-payload-bytes may be, and so the longest value any
// coordinator accepts (see SetMaxPayloadBytes()): an executor fails a longer
// value itself.
inline constexpr size_t kMaxPayloadBytesCeiling = 64 << 20;

// Sets the longest text and data of a task to `bytes`, and raises the
// longest value to at least `bytes`: an echo task's value is its text, and
// an accepted task must not fail for the size of its value.
void SetMaxPayloadBytes(size_t bytes, TaskLimits* limits);

// Parses one spec. A kind other than the built-in ones takes ARG as its text.
// INVALID_ARGUMENT naming the spec and the rule otherwise.
absl::StatusOr<v1::Task> ParseTaskSpec(absl::string_view spec,
                                       const TaskLimits& limits = {});

// Checks a task received over the wire: a valid kind name, a built-in
// kind's argument by its rules, and the limits. INVALID_ARGUMENT naming the
// field, the value and the rule. The first form takes the kind's name from
// task.kind(); the second is given the name (a task that names its kind by
// index, v1::Task.kind_index, is checked against the name at that index).
absl::Status ValidateTask(const v1::Task& task, const TaskLimits& limits = {});
absl::Status ValidateTask(const v1::Task& task, absl::string_view kind,
                          const TaskLimits& limits);

// The spec text of a task: FormatTaskSpec(ParseTaskSpec(s)) parses back to
// the same task (a task with data has no spec; its data is left out).
std::string FormatTaskSpec(const v1::Task& task);

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
