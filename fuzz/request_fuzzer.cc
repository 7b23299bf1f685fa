// libFuzzer target for decoded requests: the bytes a client or a worker can
// send, parsed as the messages the coordinator and the worker decode, then
// validated as the services do.
//
// For any input: parsing as v1::SubmitJobRequest, v1::SessionRequest,
// v1::WorkerMessage and v1::CoordinatorMessage, and ValidateTask (default and
// tight limits) over each task they carry, its kind resolved against the
// message's kind table as SubmitJob does, return without a crash or a
// sanitizer report; the task-name helpers accept any enum value; a message that
// parses serializes to bytes that parse back to an equal message.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/task_spec.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/message_differencer.h"
#include "qfarm/v1/farm.pb.h"
#include "qfarm/v1/task.pb.h"
#include "qfarm/v1/worker_link.pb.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "request_fuzzer: %s: %s\n", what, detail.c_str());
  std::abort();
}

qfarm::TaskLimits TightLimits() {
  qfarm::TaskLimits tight;
  tight.max_sleep = absl::Seconds(2);
  tight.max_timeout = absl::Milliseconds(1500);
  tight.max_cpu_units = 1000;
  tight.max_text_bytes = 16;
  tight.max_attempts = 3;
  return tight;
}

// `kinds`: the kind table of the message that carries `task`
// (v1::Task.kind_index), resolved as the coordinator's SubmitJob does.
void CheckTask(const qfarm::v1::Task& task,
               const google::protobuf::RepeatedPtrField<std::string>& kinds) {
  static const qfarm::TaskLimits* const kTight =
      new qfarm::TaskLimits(TightLimits());
  const bool by_index = task.kind().empty() &&
                        task.kind_index() < static_cast<uint32_t>(kinds.size());
  const absl::string_view kind =
      by_index ? absl::string_view(kinds[static_cast<int>(task.kind_index())])
               : absl::string_view(task.kind());
  absl::Status valid = qfarm::ValidateTask(task, kind, qfarm::TaskLimits{});
  absl::Status tight = qfarm::ValidateTask(task, kind, *kTight);
  if (valid.ok()) {
    // What the CLI and `qfarm jobs` print for an accepted task.
    (void)qfarm::FormatTaskSpec(task);
  } else if (valid.code() != absl::StatusCode::kInvalidArgument) {
    Fail("ValidateTask refused with a code other than INVALID_ARGUMENT",
         valid.ToString());
  }
  if (tight.ok() && !valid.ok()) {
    Fail("a task valid under tight limits is refused under the defaults",
         task.ShortDebugString());
  }
  if (valid.ok() && !qfarm::ValidateKindName(kind).ok()) {
    Fail("a task with a bad kind name is accepted", task.ShortDebugString());
  }
}

void CheckRoundTrip(const google::protobuf::Message& message) {
  std::string bytes;
  if (!message.SerializeToString(&bytes)) {
    Fail("a parsed message does not serialize", message.ShortDebugString());
  }
  std::unique_ptr<google::protobuf::Message> again(message.New());
  if (!again->ParseFromString(bytes) ||
      !google::protobuf::util::MessageDifferencer::Equals(message, *again)) {
    Fail("a parsed message does not round-trip", message.ShortDebugString());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int length = static_cast<int>(size);
  if (static_cast<size_t>(length) != size) return 0;

  qfarm::v1::SubmitJobRequest request;
  if (request.ParseFromArray(data, length)) {
    for (const qfarm::v1::Task& task : request.tasks()) {
      CheckTask(task, request.kinds());
    }
    CheckRoundTrip(request);
  }

  qfarm::v1::SessionRequest session_job;
  if (session_job.ParseFromArray(data, length)) {
    for (const qfarm::v1::Task& task : session_job.tasks()) {
      CheckTask(task, session_job.kinds());
    }
    CheckRoundTrip(session_job);
  }

  qfarm::v1::WorkerMessage from_worker;
  if (from_worker.ParseFromArray(data, length)) {
    if (from_worker.has_results()) {
      for (const qfarm::v1::TaskResult& result :
           from_worker.results().results()) {
        (void)qfarm::TaskStateName(result.state());
        (void)qfarm::IsFinal(result.state());
      }
    }
    CheckRoundTrip(from_worker);
  }

  qfarm::v1::CoordinatorMessage to_worker;
  if (to_worker.ParseFromArray(data, length)) {
    if (to_worker.has_tasks()) {
      for (const qfarm::v1::Assignment& assignment :
           to_worker.tasks().assignments()) {
        // Its table is the worker's hello, not in the message.
        static const google::protobuf::RepeatedPtrField<std::string> kNoTable;
        CheckTask(assignment.task(), kNoTable);
      }
    }
    CheckRoundTrip(to_worker);
  }
  return 0;
}
