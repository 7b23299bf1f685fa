#include "cli/result_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/job_list.h"
#include "common/json.h"
#include "common/task_spec.h"

namespace qfarm::client {

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

std::string FormatResultJson(const v1::TaskResult& result) {
  return absl::StrCat(
      "{\"index\":", result.index(), ",\"job_id\":", result.job_id(),
      ",\"status\":", JsonString(TaskStateName(result.state())),
      ",\"value\":", JsonString(result.value()),
      ",\"error\":", JsonString(result.error()),
      ",\"worker\":", JsonString(result.worker()),
      ",\"executor\":", JsonString(result.executor()),
      ",\"attempt\":", result.attempt(), ",\"queued_us\":", result.queued_us(),
      ",\"dispatched_us\":", result.dispatched_us(),
      ",\"started_us\":", result.started_us(),
      ",\"finished_us\":", result.finished_us(), "}");
}

std::string FormatJobInfo(const v1::JobInfo& info) {
  std::string out = absl::StrCat(
      "job ", info.job_id(), ": ", JobStateName(info.state()), ", ",
      info.total(), " tasks: ", info.queued(), " queued, ", info.running(),
      " running, ", info.ok(), " ok, ", info.failed(), " failed, ",
      info.timed_out(), " timed out, ", info.cancelled(), " cancelled");
  for (const v1::UnservedKind& unserved : info.unserved()) {
    absl::StrAppend(&out, "\n", unserved.tasks(),
                    unserved.tasks() == 1 ? " task" : " tasks",
                    " waiting: no connected worker offers kind `",
                    unserved.kind(), "`");
  }
  return out;
}

}  // namespace qfarm::client
