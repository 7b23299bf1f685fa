#include "worker/async_executor.h"

#include <pthread.h>

#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/post.hpp"
#include "asio/redirect_error.hpp"
#include "asio/use_awaitable.hpp"
#include "common/logging.h"

namespace qfarm::worker {
namespace {

constexpr absl::string_view kLabel = "async";

}  // namespace

AsyncExecutor::AsyncExecutor(const ExecutorOptions& options,
                             StartHook on_start_for_testing)
    : slots_(options.slots),
      worker_name_(options.worker_name),
      clock_(options.clock != nullptr ? options.clock : Clock::Real()),
      sink_(options.sink),
      on_start_(std::move(on_start_for_testing)),
      work_(asio::make_work_guard(io_)) {
  QFARM_CHECK(options.mode == Mode::kAsync)
      << "AsyncExecutor runs async mode, not " << ModeName(options.mode);
  QFARM_CHECK(slots_ >= 1) << "slots must be positive, got " << slots_;
  QFARM_CHECK(sink_ != nullptr) << "an executor needs a result sink";
  absl::MutexLock lock(&join_mu_);
  loop_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), std::string(kLabel).c_str());
    io_.run();
  });
}

AsyncExecutor::~AsyncExecutor() { Shutdown(); }

void AsyncExecutor::Submit(v1::Assignment assignment) {
  Accept(std::move(assignment), nullptr);
}

void AsyncExecutor::SubmitWithToken(v1::Assignment assignment,
                                    std::shared_ptr<CancelToken> cancel) {
  QFARM_CHECK(cancel != nullptr) << "SubmitWithToken needs a token";
  Accept(std::move(assignment), std::move(cancel));
}

void AsyncExecutor::Accept(v1::Assignment assignment,
                           std::shared_ptr<CancelToken> cancel) {
  const bool own_token = cancel == nullptr;
  bool accepted = false;
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      if (own_token) cancel = cancels_.Acquire(assignment.job_id());
      ++unfinished_;
      accepted = true;
    }
  }
  if (!accepted) {
    // Not counted in unfinished_: reported here and now.
    sink_->OnResult(MakeResult(assignment,
                               CancelledOutcome("executor is shut down"),
                               worker_name_, kLabel, 0, clock_->NowMicros()));
    return;
  }
  asio::post(io_,
             [this, pending = Pending{std::move(assignment), std::move(cancel),
                                      own_token}]() mutable {
               Enqueue(std::move(pending));
             });
}

void AsyncExecutor::CancelJob(uint64_t job_id) {
  std::shared_ptr<CancelToken> cancel = cancels_.Cancel(job_id);
  if (cancel == nullptr) return;  // Nothing unfinished.
  CancelTasks(std::move(cancel));
}

void AsyncExecutor::CancelTasks(std::shared_ptr<CancelToken> cancel) {
  cancel->Cancel();
  asio::post(io_,
             [this, cancel = std::move(cancel)] { DropCancelled(*cancel); });
}

void AsyncExecutor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    mu_.Await(absl::Condition(
        +[](int64_t* unfinished) { return *unfinished == 0; }, &unfinished_));
  }
  absl::MutexLock lock(&join_mu_);
  if (!loop_thread_.joinable()) return;
  // Curl's sockets and timer belong to the loop thread; this closes the
  // connections it keeps alive.
  asio::post(io_, [this] { http_.reset(); });
  work_.reset();  // io_.run() returns once the loop has nothing left.
  loop_thread_.join();
}

void AsyncExecutor::Enqueue(Pending pending) {
  if (pending.cancel->cancelled()) {
    ReportNotStarted(pending.assignment, "job cancelled");
    FinishOne();
    return;
  }
  queue_.push_back(std::move(pending));
  StartMore();
}

void AsyncExecutor::StartMore() {
  while (in_flight_ < slots_ && !queue_.empty()) {
    Pending pending = std::move(queue_.front());
    queue_.pop_front();
    if (pending.cancel->cancelled()) {
      ReportNotStarted(pending.assignment, "job cancelled");
      FinishOne();
      continue;
    }
    ++in_flight_;
    asio::co_spawn(io_, Run(std::move(pending)), asio::detached);
  }
}

void AsyncExecutor::DropCancelled(const CancelToken& cancel) {
  std::vector<Pending> dropped;
  std::deque<Pending> kept;
  for (Pending& pending : queue_) {
    if (pending.cancel.get() == &cancel) {
      dropped.push_back(std::move(pending));
    } else {
      kept.push_back(std::move(pending));
    }
  }
  queue_ = std::move(kept);
  // Their coroutines resume later, with operation_aborted, and stop.
  if (auto it = waiting_.find(&cancel); it != waiting_.end()) {
    for (asio::steady_timer* timer : it->second) timer->cancel();
  }
  for (const Pending& pending : dropped) {
    ReportNotStarted(pending.assignment, "job cancelled");
    FinishOne();
  }
}

asio::awaitable<void> AsyncExecutor::Run(Pending pending) {
  const v1::Assignment& assignment = pending.assignment;
  const int64_t started_us = clock_->NowMicros();
  if (on_start_) on_start_(assignment);
  TaskOutcome outcome;
  if (assignment.task().kind() == v1::TASK_KIND_SLEEP) {
    outcome = co_await Sleep(pending);
  } else if (assignment.task().kind() == v1::TASK_KIND_HTTP) {
    outcome = co_await Http(pending);
  } else {
    // Instant for echo and invalid tasks; cpu holds up the loop.
    outcome = RunTaskBlocking(assignment.task(), *pending.cancel);
  }
  const int64_t finished_us = clock_->NowMicros();
  if (pending.own_token) {
    cancels_.Release(assignment.job_id(), pending.cancel);
  }
  sink_->OnResult(MakeResult(assignment, std::move(outcome), worker_name_,
                             kLabel, started_us, finished_us));
  --in_flight_;
  StartMore();
  FinishOne();
}

asio::awaitable<TaskOutcome> AsyncExecutor::Sleep(const Pending& pending) {
  const v1::Task& task = pending.assignment.task();
  TaskOutcome refused = CheckRunnable(task);
  if (refused.state != v1::TASK_STATE_UNSPECIFIED) co_return refused;
  const CancelToken* cancel = pending.cancel.get();
  if (cancel->cancelled()) co_return CancelledOutcome("job cancelled");

  asio::steady_timer timer(io_,
                           absl::ToChronoMilliseconds(SleepWaitTime(task)));
  waiting_[cancel].insert(&timer);
  std::error_code error;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, error));
  Unwait(cancel, &timer);

  if (cancel->cancelled()) co_return CancelledOutcome("job cancelled");
  if (error) {
    co_return TaskOutcome{
        .state = v1::TASK_STATE_FAILED,
        .value = {},
        .error = absl::StrCat("sleep timer failed: ", error.message())};
  }
  co_return SleepOutcome(task);
}

asio::awaitable<TaskOutcome> AsyncExecutor::Http(const Pending& pending) {
  const v1::Task& task = pending.assignment.task();
  TaskOutcome refused = CheckRunnable(task);
  if (refused.state != v1::TASK_STATE_UNSPECIFIED) co_return refused;
  const CancelToken* cancel = pending.cancel.get();
  if (cancel->cancelled()) co_return CancelledOutcome("job cancelled");
  if (http_ == nullptr) http_ = std::make_unique<HttpMulti>(io_);

  // Woken by the transfer's end, or by DropCancelled().
  asio::steady_timer wake(io_, asio::steady_timer::time_point::max());
  std::optional<TaskOutcome> outcome;
  // The callback runs on a later loop turn, while this frame waits.
  const HttpMulti::TransferId transfer =
      http_->Start(task, [&outcome, &wake](TaskOutcome done) {
        outcome = std::move(done);
        wake.cancel();
      });
  waiting_[cancel].insert(&wake);
  std::error_code error;
  co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, error));
  Unwait(cancel, &wake);

  if (cancel->cancelled()) {
    http_->Cancel(transfer);  // No effect if it finished meanwhile.
    co_return CancelledOutcome("job cancelled");
  }
  if (!outcome) {  // Only a cancel wakes the timer early.
    http_->Cancel(transfer);
    co_return TaskOutcome{.state = v1::TASK_STATE_FAILED,
                          .value = {},
                          .error = "http transfer was interrupted"};
  }
  co_return *std::move(outcome);
}

void AsyncExecutor::Unwait(const CancelToken* cancel,
                           asio::steady_timer* timer) {
  auto it = waiting_.find(cancel);
  it->second.erase(timer);
  if (it->second.empty()) waiting_.erase(it);
}

void AsyncExecutor::ReportNotStarted(const v1::Assignment& assignment,
                                     absl::string_view why) {
  sink_->OnResult(MakeResult(assignment, CancelledOutcome(why), worker_name_,
                             kLabel, 0, clock_->NowMicros()));
}

void AsyncExecutor::FinishOne() {
  absl::MutexLock lock(&mu_);
  --unfinished_;
}

}  // namespace qfarm::worker
