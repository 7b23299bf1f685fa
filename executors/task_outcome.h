// What one attempt of a task came to, whatever ran it.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {

// What one attempt of a task came to: a final state with a value (OK) or an
// error (otherwise).
struct TaskOutcome {
  v1::TaskState state = v1::TASK_STATE_UNSPECIFIED;
  std::string value;
  std::string error;
};

TaskOutcome CancelledOutcome(absl::string_view why);
TaskOutcome TimedOutOutcome(int64_t timeout_ms);

}  // namespace qfarm::executors
