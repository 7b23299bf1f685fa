#include "executors/executor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/abbreviate.h"
#include "common/logging.h"
#include "executors/async_executor.h"
#include "executors/auto_executor.h"
#include "executors/thread_executor.h"

namespace qfarm::executors {

void ResultSink::OnResults(std::vector<v1::TaskResult>& results) {
  for (v1::TaskResult& result : results) OnResult(std::move(result));
}

void Executor::SubmitBatch(std::vector<v1::Assignment> assignments) {
  for (v1::Assignment& assignment : assignments) Submit(std::move(assignment));
}

absl::StatusOr<Mode> ParseMode(absl::string_view text) {
  if (text == "serial") return Mode::kSerial;
  if (text == "thread") return Mode::kThread;
  if (text == "async") return Mode::kAsync;
  if (text == "auto") return Mode::kAuto;
  return absl::InvalidArgumentError(
      absl::StrCat("executor mode \"", Abbreviate(text),
                   "\" is not one of serial, thread, async, auto"));
}

int DefaultSlots(Mode mode, Pool pool) {
  switch (mode) {
    case Mode::kSerial:
      return 1;
    case Mode::kThread:
      return 4;
    case Mode::kAsync:
    case Mode::kAuto:
      break;
  }
  return pool == Pool::kWorker ? 1'000 : 10'000;
}

absl::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kSerial:
      return "serial";
    case Mode::kThread:
      return "thread";
    case Mode::kAsync:
      return "async";
    case Mode::kAuto:
      return "auto";
  }
  return "unknown";
}

std::unique_ptr<Executor> MakeExecutor(const ExecutorOptions& options) {
  switch (options.mode) {
    case Mode::kSerial:
    case Mode::kThread:
      return std::make_unique<ThreadExecutor>(options);
    case Mode::kAsync:
      return std::make_unique<AsyncExecutor>(options);
    case Mode::kAuto:
      return std::make_unique<AutoExecutor>(options);
  }
  QFARM_CHECK(false) << "unknown executor mode "
                     << static_cast<int>(options.mode);
  return nullptr;
}

}  // namespace qfarm::executors
