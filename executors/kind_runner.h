// Running a registered kind (qfarm/kinds.h) for the executors: its blocking
// form on the calling thread, its coroutine form on an event loop, and what
// a handler's answer comes to.
//
//   const Kinds::Kind* kind = KindOf(kinds, task);  // By name or index.
//   TaskOutcome outcome = RunRegisteredBlocking(*kind, task, cancel);
//   // on a loop (loop thread), `wake` cancelled by whoever cancels the job:
//   TaskOutcome outcome =
//       co_await RunRegisteredCoroutine(*kind, task, cancel, loop, wake);
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "asio/io_context.hpp"
#include "asio/steady_timer.hpp"
#include "executors/cancel_token.h"
#include "executors/task_outcome.h"
#include "qfarm/kinds.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {
class HttpMulti;
}  // namespace qfarm::executors

namespace qfarm::internal {

// The event loop a coroutine handler runs on, and its libcurl multi handle.
// Loop thread only.
class Loop {
 public:
  virtual ~Loop() = default;
  virtual asio::io_context& io() = 0;
  // Made on first use.
  virtual executors::HttpMulti& http() = 0;
};

}  // namespace qfarm::internal

namespace qfarm::executors {

// Kinds::BuiltIn(), made once; what an executor runs without other kinds.
const Kinds& BuiltInKinds();

// The kind `task` names, by name or by index in kinds.names() (see
// v1::Task.kind_index); null if `kinds` has none such.
inline const Kinds::Kind* KindOf(const Kinds& kinds, const v1::Task& task) {
  return task.kind().empty() ? kinds.At(task.kind_index())
                             : kinds.Find(task.kind());
}

// Whether `task` is of the built-in echo kind of `kinds`.
inline bool IsInstant(const Kinds& kinds, const v1::Task& task) {
  return task.kind().empty() ? kinds.IsInstantAt(task.kind_index())
                             : kinds.IsInstant(task.kind());
}

// When an attempt of `task` that starts now times out; max() without a
// timeout.
TaskInput::Clock::time_point DeadlineOf(const v1::Task& task);

// What a handler's answer comes to (see qfarm/kinds.h): a value over
// `max_value_bytes` FAILS; `timeout_ms` words a DEADLINE_EXCEEDED.
TaskOutcome OutcomeOf(absl::StatusOr<std::string> answer, int64_t timeout_ms,
                      size_t max_value_bytes);

// Runs `kind` (not a built-in one) on the calling thread: its blocking form,
// or else its coroutine form on a loop of this thread until it ends (the
// cancellation is polled every kHttpCancelPollMs). A blocking form that
// returns past the deadline is TIMED_OUT.
TaskOutcome RunRegisteredBlocking(const Kinds::Kind& kind, const v1::Task& task,
                                  const CancelToken& cancel);

// Runs the coroutine form of `kind` on `loop`, racing it against `wake`: the
// task's deadline sets `wake`'s expiry, and the caller cancels `wake` when
// `cancel` is set. Whichever comes first ends the other (the coroutine is
// cancelled at its co_await). Loop thread only; `kind`, `task`, `cancel` and
// `wake` must outlive the awaitable.
asio::awaitable<TaskOutcome> RunRegisteredCoroutine(const Kinds::Kind& kind,
                                                    const v1::Task& task,
                                                    const CancelToken& cancel,
                                                    internal::Loop& loop,
                                                    asio::steady_timer& wake);

}  // namespace qfarm::executors
