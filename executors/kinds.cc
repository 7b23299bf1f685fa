// The kind registry (qfarm/kinds.h) and the runners of registered kinds
// (executors/kind_runner.h).
#include "qfarm/kinds.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "asio/co_spawn.hpp"
#include "asio/experimental/deferred.hpp"
#include "asio/experimental/parallel_group.hpp"
#include "asio/redirect_error.hpp"
#include "asio/use_awaitable.hpp"
#include "common/task_spec.h"
#include "executors/http_multi.h"
#include "executors/http_task.h"
#include "executors/kind_runner.h"

namespace qfarm {

bool Kinds::Kind::runs_on_loop() const {
  switch (builtin) {
    case Builtin::kSleep:
    case Builtin::kEcho:
    case Builtin::kHttp:
      return true;
    case Builtin::kCpu:
      return false;
    case Builtin::kNone:
      break;
  }
  return coroutine != nullptr;
}

Kinds Kinds::BuiltIn() {
  Kinds kinds;
  const std::pair<absl::string_view, Builtin> builtins[] = {
      {kSleepKind, Builtin::kSleep},
      {kEchoKind, Builtin::kEcho},
      {kCpuKind, Builtin::kCpu},
      {kHttpKind, Builtin::kHttp}};
  for (const auto& [name, builtin] : builtins) {
    kinds.Entry(name)->builtin = builtin;
  }
  kinds.Reindex();
  return kinds;
}

Kinds::Kind* Kinds::Entry(absl::string_view name) {
  if (absl::Status valid = ValidateKindName(name); !valid.ok()) {
    if (status_.ok()) status_ = valid;
    return nullptr;
  }
  auto it = kinds_.begin() + static_cast<std::ptrdiff_t>(Place(name));
  if (it == kinds_.end() || it->name != name) {
    it = kinds_.insert(it, Kind());
  } else if (it->builtin != Builtin::kNone) {
    // A user's kind of a built-in kind's name replaces it whole.
    *it = Kind();
  }
  it->name = std::string(name);
  Reindex();
  return &*it;
}

void Kinds::Reindex() {
  echo_index_ = kNoIndex;
  for (size_t i = 0; i < kinds_.size(); ++i) {
    if (kinds_[i].builtin == Builtin::kEcho) echo_index_ = i;
  }
}

Kinds::Kind* Kinds::EntryFor(absl::string_view name, bool empty,
                             absl::string_view form) {
  if (empty) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat("kind \"", name, "\": the ", form, " is empty"));
    }
    return nullptr;
  }
  return Entry(name);
}

Kinds& Kinds::AddBlocking(absl::string_view name, BlockingFn fn) {
  if (Kind* kind = EntryFor(name, fn == nullptr, "blocking function")) {
    kind->blocking = std::move(fn);
  }
  return *this;
}

Kinds& Kinds::AddCoroutine(absl::string_view name, CoroutineFn fn) {
  if (Kind* kind = EntryFor(name, fn == nullptr, "coroutine")) {
    kind->coroutine = std::move(fn);
  }
  return *this;
}

Kinds& Kinds::Drop(absl::string_view name) {
  std::erase_if(kinds_, [name](const Kind& kind) { return kind.name == name; });
  Reindex();
  return *this;
}

std::vector<std::string> Kinds::names() const {
  std::vector<std::string> out;
  out.reserve(kinds_.size());
  for (const Kind& kind : kinds_) out.push_back(kind.name);
  return out;
}

size_t Kinds::Place(absl::string_view name) const {
  return static_cast<size_t>(
      std::lower_bound(
          kinds_.begin(), kinds_.end(), name,
          [](const Kind& kind, absl::string_view n) { return kind.name < n; }) -
      kinds_.begin());
}

const Kinds::Kind* Kinds::Find(absl::string_view name) const {
  const Kind* kind = At(Place(name));
  return kind != nullptr && kind->name == name ? kind : nullptr;
}

asio::awaitable<absl::StatusOr<std::string>> HttpGet(const TaskInput& input,
                                                     std::string url) {
  if (input.loop() == nullptr) {
    co_return absl::FailedPreconditionError(
        "HttpGet() runs in a kind's coroutine on qfarm's loop");
  }
  v1::Task task;
  task.set_kind(std::string(kHttpKind));
  task.set_text(std::move(url));
  if (input.deadline() != TaskInput::Clock::time_point::max()) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        input.deadline() - TaskInput::Clock::now());
    if (left.count() <= 0) {
      co_return absl::DeadlineExceededError("deadline passed before the GET");
    }
    task.set_timeout_ms(left.count());
  }
  if (absl::Status valid = ValidateTask(task, NoTaskLimits()); !valid.ok()) {
    co_return valid;
  }
  executors::HttpMulti& http = input.loop()->http();
  asio::steady_timer wake(input.loop()->io(),
                          asio::steady_timer::time_point::max());
  std::optional<executors::TaskOutcome> outcome;
  std::string body;
  const executors::HttpMulti::TransferId transfer = http.Start(
      task,
      [&outcome, &wake](executors::TaskOutcome done) {
        outcome = std::move(done);
        wake.cancel();
      },
      &body);
  // However this frame ends (a cancelled co_await throws), the transfer
  // never calls back into it.
  absl::Cleanup stop = [&http, transfer] { http.Cancel(transfer); };
  std::error_code error;
  co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, error));
  if (!outcome) co_return absl::CancelledError("http GET cancelled");
  switch (outcome->state) {
    case v1::TASK_STATE_OK:
      co_return std::move(body);
    case v1::TASK_STATE_TIMED_OUT:
      co_return absl::DeadlineExceededError(outcome->error);
    default:
      co_return absl::UnavailableError(outcome->error);
  }
}

}  // namespace qfarm

namespace qfarm::executors {
namespace {

TaskOutcome Failed(std::string error) {
  return {
      .state = v1::TASK_STATE_FAILED, .value = {}, .error = std::move(error)};
}

// The answer of a handler that threw.
absl::StatusOr<std::string> Thrown(std::exception_ptr thrown) {
  try {
    std::rethrow_exception(std::move(thrown));
  } catch (const std::exception& e) {
    return absl::UnknownError(absl::StrCat("exception: ", e.what()));
  } catch (...) {
    return absl::UnknownError("exception of an unknown type");
  }
}

// A loop of the calling thread for coroutines run to their end there, with
// its own libcurl multi handle. Destroyed when the thread exits.
class ThreadLoop final : public internal::Loop {
 public:
  asio::io_context& io() override { return io_; }
  HttpMulti& http() override {
    if (http_ == nullptr) http_ = std::make_unique<HttpMulti>(io_);
    return *http_;
  }

 private:
  asio::io_context io_{1};
  // Declared after io_: destroyed first.
  std::unique_ptr<HttpMulti> http_;
};

// Runs a coroutine form to its end on this thread's loop.
TaskOutcome RunCoroutineHere(const Kinds::Kind& kind, const v1::Task& task,
                             const CancelToken& cancel) {
  thread_local ThreadLoop loop;
  asio::io_context& io = loop.io();
  asio::steady_timer wake(io);
  asio::steady_timer poll(io);
  std::optional<TaskOutcome> outcome;
  asio::co_spawn(
      io, RunRegisteredCoroutine(kind, task, cancel, loop, wake),
      [&outcome, &poll](std::exception_ptr thrown, TaskOutcome done) {
        outcome = thrown ? OutcomeOf(Thrown(thrown), 0, 0) : std::move(done);
        poll.cancel();
      });
  // The job's cancellation reaches the coroutine through `wake`.
  std::function<void(const std::error_code&)> check =
      [&](const std::error_code& error) {
        if (error || outcome) return;
        if (cancel.cancelled()) {
          wake.cancel();
          return;
        }
        poll.expires_after(std::chrono::milliseconds(kHttpCancelPollMs));
        poll.async_wait(check);
      };
  check({});
  io.restart();
  // Not run(): connections curl keeps alive leave waits behind.
  while (!outcome && io.run_one() > 0) {
  }
  // What the poll left is finished here, so no handler outlives `check`.
  poll.cancel();
  while (io.poll_one() > 0) {
  }
  if (!outcome) return Failed("the task's loop stopped");
  return *std::move(outcome);
}

}  // namespace

const Kinds& BuiltInKinds() {
  static const Kinds* const kinds = new Kinds(Kinds::BuiltIn());
  return *kinds;
}

TaskInput::Clock::time_point DeadlineOf(const v1::Task& task) {
  if (task.timeout_ms() <= 0) return TaskInput::Clock::time_point::max();
  return TaskInput::Clock::now() + std::chrono::milliseconds(task.timeout_ms());
}

TaskOutcome OutcomeOf(absl::StatusOr<std::string> answer, int64_t timeout_ms,
                      size_t max_value_bytes) {
  if (answer.ok()) {
    if (answer->size() > max_value_bytes) {
      return Failed(absl::StrCat("value of ", answer->size(),
                                 " bytes is over the result limit of ",
                                 max_value_bytes, " bytes"));
    }
    return {
        .state = v1::TASK_STATE_OK, .value = *std::move(answer), .error = {}};
  }
  const absl::Status& status = answer.status();
  const std::string message = status.message().empty()
                                  ? absl::StatusCodeToString(status.code())
                                  : std::string(status.message());
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
      return CancelledOutcome(message);
    case absl::StatusCode::kDeadlineExceeded:
      if (timeout_ms > 0) return TimedOutOutcome(timeout_ms);
      return {.state = v1::TASK_STATE_TIMED_OUT, .value = {}, .error = message};
    default:
      return Failed(message);
  }
}

TaskOutcome RunRegisteredBlocking(const Kinds::Kind& kind, const v1::Task& task,
                                  const CancelToken& cancel) {
  if (kind.blocking == nullptr) {
    return RunCoroutineHere(kind, task, cancel);
  }
  const TaskInput input(task.text(), task.data(), cancel, DeadlineOf(task));
  absl::StatusOr<std::string> answer;
  try {
    answer = kind.blocking(input);
  } catch (...) {
    answer = Thrown(std::current_exception());
  }
  if (answer.ok() && task.timeout_ms() > 0 &&
      TaskInput::Clock::now() > input.deadline()) {
    return TimedOutOutcome(task.timeout_ms());
  }
  return OutcomeOf(std::move(answer), task.timeout_ms(),
                   kMaxPayloadBytesCeiling);
}

asio::awaitable<TaskOutcome> RunRegisteredCoroutine(const Kinds::Kind& kind,
                                                    const v1::Task& task,
                                                    const CancelToken& cancel,
                                                    internal::Loop& loop,
                                                    asio::steady_timer& wake) {
  const TaskInput input(task.text(), task.data(), cancel, DeadlineOf(task),
                        &loop);
  wake.expires_at(input.deadline());
  if (cancel.cancelled()) co_return CancelledOutcome("job cancelled");
  // Whichever ends first cancels the other; both have ended on return.
  auto [order, thrown, answer, wake_error] =
      co_await asio::experimental::make_parallel_group(
          asio::co_spawn(loop.io(), kind.coroutine(input),
                         asio::experimental::deferred),
          wake.async_wait(asio::experimental::deferred))
          .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  if (order[0] == 0) {
    if (thrown) answer = Thrown(thrown);
    co_return OutcomeOf(std::move(answer), task.timeout_ms(),
                        kMaxPayloadBytesCeiling);
  }
  if (cancel.cancelled()) co_return CancelledOutcome("job cancelled");
  if (task.timeout_ms() > 0) co_return TimedOutOutcome(task.timeout_ms());
  co_return Failed("the task was stopped");
}

}  // namespace qfarm::executors
