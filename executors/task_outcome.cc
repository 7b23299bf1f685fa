#include "executors/task_outcome.h"

#include "absl/strings/str_cat.h"

namespace qfarm::executors {

TaskOutcome CancelledOutcome(absl::string_view why) {
  return {.state = v1::TASK_STATE_CANCELLED,
          .value = {},
          .error = std::string(why)};
}

TaskOutcome TimedOutOutcome(int64_t timeout_ms) {
  return {.state = v1::TASK_STATE_TIMED_OUT,
          .value = {},
          .error = absl::StrCat("timed out after ", timeout_ms, "ms")};
}

}  // namespace qfarm::executors
