// Task kinds: what a worker (or a local pool) can run, by name. A kind is
// registered in one form or both:
//   - a blocking function, run on the serial and thread executors (and on
//     the auto mode's pool when it has no coroutine form);
//   - a C++20 coroutine on Asio, run on the event loop of the async and auto
//     executors.
// A kind registered in one form still runs in every mode: a blocking
// function in async mode holds up the loop while it runs (as the built-in
// cpu kind does); a coroutine on a serial or thread executor runs to its
// end on a loop of that thread.
//
//   qfarm::Kinds kinds = qfarm::Kinds::BuiltIn();   // sleep, echo, cpu, http
//   kinds.AddBlocking("reverse", [](const qfarm::TaskInput& in)
//                                    -> absl::StatusOr<std::string> {
//     return std::string(in.text().rbegin(), in.text().rend());
//   });
//   kinds.AddCoroutine("size", [](const qfarm::TaskInput& in)
//       -> asio::awaitable<absl::StatusOr<std::string>> {
//     absl::StatusOr<std::string> body = co_await qfarm::HttpGet(in,
//     in.text()); if (!body.ok()) co_return body.status(); co_return
//     std::to_string(body->size());
//   });
//
// What a handler returns becomes the task's result: a value is OK (FAILED
// when it is longer than the result limit); a status CANCELLED is
// CANCELLED, DEADLINE_EXCEEDED is TIMED_OUT, any other is FAILED with its
// message; an exception is FAILED with its what(). The task's deadline
// (its timeout) and cancellation are enforced around a coroutine: when
// either comes first, the coroutine is cancelled at its next co_await.
// A blocking function sees them through its TaskInput and stops itself.
//
// Kind names: 1 to 64 characters of ASCII letters, digits, '_', '.' and
// '-', starting with a letter.
//
// Thread-safety: a Kinds is built on one thread, then only read (by many
// executor threads at once); it must outlive every executor that uses it.
// Handlers are called concurrently, from executor threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"

namespace qfarm {

namespace internal {
// The event loop a coroutine runs on (qfarm's, not part of the API).
class Loop;
}  // namespace internal

// A one-way cancellation flag that running tasks poll or wait on.
// Thread-safe. Waiters sleep on the flag itself (a Linux futex), not on a
// shared lock: the thousands of threads of a big thread pool, all sleeping
// on one job's token, wake independently.
class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Sets the flag and wakes every WaitFor(). Idempotent.
  void Cancel();

  bool cancelled() const {
    return cancelled_.load(std::memory_order_acquire) != 0;
  }

  // Blocks until cancelled or `timeout` passed; true if cancelled.
  bool WaitFor(absl::Duration timeout) const;

 private:
  // 0, then 1 once cancelled; the futex word.
  mutable std::atomic<uint32_t> cancelled_{0};
};

// What a handler receives: the task's argument, its cancellation and its
// deadline. It lives until the handler returns (for a coroutine: until the
// coroutine ends), so a handler may keep references into it that long.
class TaskInput {
 public:
  using Clock = std::chrono::steady_clock;

  TaskInput(absl::string_view text, absl::string_view data,
            const CancelToken& cancel, Clock::time_point deadline,
            internal::Loop* loop = nullptr)
      : text_(text),
        data_(data),
        cancel_(cancel),
        deadline_(deadline),
        loop_(loop) {}

  // The argument: the spec's ARG (`reverse:hello` -> "hello"), UTF-8.
  absl::string_view text() const { return text_; }
  // The argument as bytes, for clients that send them.
  absl::string_view data() const { return data_; }
  // Set when the task's job is cancelled.
  const CancelToken& cancel() const { return cancel_; }
  bool cancelled() const { return cancel_.cancelled(); }
  // When the attempt times out; Clock::time_point::max() when it has no
  // timeout.
  Clock::time_point deadline() const { return deadline_; }
  // Null in a blocking function.
  internal::Loop* loop() const { return loop_; }

 private:
  absl::string_view text_;
  absl::string_view data_;
  const CancelToken& cancel_;
  Clock::time_point deadline_;
  internal::Loop* loop_;
};

using BlockingFn =
    std::function<absl::StatusOr<std::string>(const TaskInput& input)>;
using CoroutineFn = std::function<asio::awaitable<absl::StatusOr<std::string>>(
    const TaskInput& input)>;

// In a coroutine: a GET of an http:// or https:// `url` through the loop's
// libcurl multi handle (the path of the built-in http kind: no thread is
// blocked; connections are kept alive). The body of a 2xx answer, at most
// 16 MiB. Errors: UNAVAILABLE for another status ("HTTP 503") or a
// connection error (curl's message), DEADLINE_EXCEEDED past the task's
// deadline (30 s without one), INVALID_ARGUMENT for a bad URL or a body over
// the limit. Must be awaited by the handler's own coroutine (`input` is the
// handler's).
asio::awaitable<absl::StatusOr<std::string>> HttpGet(const TaskInput& input,
                                                     std::string url);

// The kinds a worker offers, by name, and by index in names() (the kind
// table of the tasks a worker is sent). Copyable. Add*() and Drop() move
// kinds: call them before the kinds are used.
class Kinds {
 public:
  // How an executor runs a kind: the built-in kinds' own paths (tags), or
  // the registered forms (kNone).
  enum class Builtin { kNone, kSleep, kEcho, kCpu, kHttp };

  struct Kind {
    std::string name;
    // Either or both are set.
    BlockingFn blocking;
    CoroutineFn coroutine;
    // A built-in kind that executors run on their own paths.
    Builtin builtin = Builtin::kNone;

    // Whether executors run it on an event loop (in async and auto modes):
    // it has a coroutine form, or is a built-in one of those.
    bool runs_on_loop() const;
  };

  // No kinds.
  Kinds() = default;
  // sleep, echo, cpu and http (see proto/qfarm/v1/task.proto).
  static Kinds BuiltIn();

  // Registers `fn` as the blocking form of `name`, replacing an earlier one
  // (and a built-in kind of that name: it becomes a user's kind). A bad
  // name is remembered in status() and the kind is not added.
  Kinds& AddBlocking(absl::string_view name, BlockingFn fn);
  // As AddBlocking(), for the coroutine form.
  Kinds& AddCoroutine(absl::string_view name, CoroutineFn fn);
  // Removes `name` (a built-in kind too); no effect if absent.
  Kinds& Drop(absl::string_view name);

  // OK, or INVALID_ARGUMENT for the first bad name given to Add*().
  const absl::Status& status() const { return status_; }
  // The names, sorted.
  std::vector<std::string> names() const;
  bool empty() const { return kinds_.empty(); }
  size_t size() const { return kinds_.size(); }

  // The kind named `name`; null if there is none. The pointers Find() and
  // At() return are valid until the next Add*() or Drop().
  const Kind* Find(absl::string_view name) const;
  // The kind at `index` of names(); null past the end.
  const Kind* At(size_t index) const {
    return index < kinds_.size() ? &kinds_[index] : nullptr;
  }
  // Whether tasks of `name`, or of the kind at `index`, are the built-in
  // echo, which executors run inline (a hot path: one comparison).
  bool IsInstant(absl::string_view name) const {
    return echo_index_ != kNoIndex && name == "echo";
  }
  bool IsInstantAt(size_t index) const {
    return echo_index_ != kNoIndex && index == echo_index_;
  }

 private:
  static constexpr size_t kNoIndex = static_cast<size_t>(-1);

  Kind* Entry(absl::string_view name);
  // Entry(name), unless the `form` given is `empty` (status_ says so).
  Kind* EntryFor(absl::string_view name, bool empty, absl::string_view form);
  // Sets echo_index_.
  void Reindex();
  // Where `name` is or would go in kinds_.
  size_t Place(absl::string_view name) const;

  // Sorted by name.
  std::vector<Kind> kinds_;
  // Index of the built-in echo in kinds_, or kNoIndex.
  size_t echo_index_ = kNoIndex;
  absl::Status status_;
};

}  // namespace qfarm
