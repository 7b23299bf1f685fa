// How the CLI shows results: one text line or one JSON object per result.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "qfarm/v1/farm.pb.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::client {

// "worker-2/thread-1": the worker, a slash, the executor inside it.
std::string ExecutorName(const v1::TaskResult& result);

// "   3  ok         worker-2/thread-1     1000" (index, status, executor,
// then the value, or the error when the task did not succeed).
std::string FormatResultText(const v1::TaskResult& result);

// One JSON object, no newline, with the fields in this order: index,
// job_id (numbers), status, value, error, worker, executor (strings; see
// JsonString() in common/json.h: bytes outside UTF-8 become U+FFFD),
// attempt and the four timestamps (numbers, Unix microseconds).
std::string FormatResultJson(const v1::TaskResult& result);

// "job 7: running, 10 tasks: 3 queued, 0 running, 7 ok, 0 failed, 0 timed
// out, 0 cancelled", then a line for each kind no connected worker offers:
// "3 tasks waiting: no connected worker offers kind `resize`".
std::string FormatJobInfo(const v1::JobInfo& info);

}  // namespace qfarm::client
