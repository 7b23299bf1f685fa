// libFuzzer target for the task spec text (common/task_spec.h), which the
// CLI, the client library and the coordinator accept from users.
//
// For any input: ParseTaskSpec and ParseDurationFlag return, without a crash
// or a sanitizer report. For a spec that parses, under the default limits,
// under none (NoTaskLimits) and under tight ones: the task passes ValidateTask
// under the same limits, and FormatTaskSpec of it parses back to an equal task.
// A broken property aborts, which libFuzzer reports as a crash with the input
// saved.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/task_spec.h"
#include "google/protobuf/util/message_differencer.h"

namespace {

[[noreturn]] void Fail(absl::string_view spec, absl::string_view what,
                       absl::string_view detail) {
  std::fprintf(stderr, "task_spec_fuzzer: spec \"%.*s\": %.*s: %.*s\n",
               static_cast<int>(spec.size()), spec.data(),
               static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

void CheckSpec(absl::string_view spec, const qfarm::TaskLimits& limits) {
  absl::StatusOr<qfarm::v1::Task> task = qfarm::ParseTaskSpec(spec, limits);
  if (!task.ok()) {
    if (task.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail(spec, "refused with a code other than INVALID_ARGUMENT",
           task.status().ToString());
    }
    return;
  }
  absl::Status valid = qfarm::ValidateTask(*task, limits);
  if (!valid.ok()) {
    Fail(spec, "parsed, but ValidateTask refuses it", valid.ToString());
  }
  const std::string text = qfarm::FormatTaskSpec(*task);
  absl::StatusOr<qfarm::v1::Task> again = qfarm::ParseTaskSpec(text, limits);
  if (!again.ok()) {
    Fail(spec, "FormatTaskSpec gives a spec that does not parse",
         again.status().ToString());
  }
  if (!google::protobuf::util::MessageDifferencer::Equals(*task, *again)) {
    Fail(spec, "FormatTaskSpec does not parse back to the same task",
         text + " -> " + task->ShortDebugString() + " vs " +
             again->ShortDebugString());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view spec(reinterpret_cast<const char*>(data), size);

  CheckSpec(spec, qfarm::TaskLimits{});
  // How the CLI parses a spec for a farm (the coordinator checks limits).
  CheckSpec(spec, qfarm::NoTaskLimits());
  qfarm::TaskLimits tight;
  tight.max_sleep = absl::Seconds(2);
  tight.max_timeout = absl::Milliseconds(1500);
  tight.max_cpu_units = 1000;
  tight.max_text_bytes = 16;
  tight.max_attempts = 3;
  CheckSpec(spec, tight);

  absl::StatusOr<absl::Duration> d = qfarm::ParseDurationFlag(spec);
  if (d.ok() && *d < absl::ZeroDuration()) {
    Fail(spec, "ParseDurationFlag returned a negative duration",
         absl::FormatDuration(*d));
  }
  return 0;
}
