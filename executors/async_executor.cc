#include "executors/async_executor.h"

#include <pthread.h>

#include <algorithm>
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

namespace qfarm::executors {
namespace {

constexpr absl::string_view kLabel = "async";
constexpr int kInstantsPerClockRead = 16;
// Most results of sleeps that ended together in one OnResults() call.
constexpr size_t kMaxFlush = 4096;
// Batches of spent assignments kept for TakeSpentAssignments().
constexpr size_t kMaxSpentBatches = 4;

}  // namespace

AsyncExecutor::AsyncExecutor(const ExecutorOptions& options,
                             StartHook on_start_for_testing)
    : slots_(options.slots),
      kinds_(options.kinds != nullptr ? options.kinds : &BuiltInKinds()),
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

void AsyncExecutor::SubmitBatch(std::vector<v1::Assignment> assignments) {
  if (assignments.empty()) return;
  Batch batch;
  bool accepted = false;
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      accepted = true;
      ForEachJobRun(assignments, [&](size_t begin, size_t end, uint64_t job) {
        batch.runs.emplace_back(
            end, cancels_.Acquire(job, static_cast<int64_t>(end - begin)));
      });
      unfinished_ += static_cast<int64_t>(assignments.size());
    }
  }
  if (!accepted) {
    // Not counted in unfinished_: reported here and now.
    for (const v1::Assignment& assignment : assignments) {
      sink_->OnResult(MakeResult(assignment,
                                 CancelledOutcome("executor is shut down"),
                                 worker_name_, kLabel, 0, clock_->NowMicros()));
    }
    return;
  }
  batch.assignments = std::move(assignments);
  asio::post(io_, [this, batch = std::move(batch)]() mutable {
    EnqueueBatch(std::move(batch));
  });
}

void AsyncExecutor::SubmitWithToken(v1::Assignment assignment,
                                    std::shared_ptr<CancelToken> cancel) {
  QFARM_CHECK(cancel != nullptr) << "SubmitWithToken needs a token";
  Accept(std::move(assignment), std::move(cancel));
}

void AsyncExecutor::SubmitBatchWithTokens(
    std::vector<std::pair<v1::Assignment, std::shared_ptr<CancelToken>>>
        tasks) {
  if (tasks.empty()) return;
  for (const auto& item : tasks) {
    QFARM_CHECK(item.second != nullptr) << "SubmitWithToken needs a token";
  }
  bool accepted = false;
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      unfinished_ += static_cast<int64_t>(tasks.size());
      accepted = true;
    }
  }
  if (!accepted) {
    for (const auto& item : tasks) {
      sink_->OnResult(MakeResult(item.first,
                                 CancelledOutcome("executor is shut down"),
                                 worker_name_, kLabel, 0, clock_->NowMicros()));
    }
    return;
  }
  Batch batch;
  batch.own_tokens = false;
  batch.assignments.reserve(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    batch.assignments.push_back(std::move(tasks[i].first));
    if (i + 1 == tasks.size() || tasks[i + 1].second != tasks[i].second) {
      batch.runs.emplace_back(i + 1, std::move(tasks[i].second));
    }
  }
  asio::post(io_, [this, batch = std::move(batch)]() mutable {
    EnqueueBatch(std::move(batch));
  });
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
  asio::post(io_, [this] {
    http_.reset();
    sleepers_.Stop();
  });
  work_.reset();  // io_.run() returns once the loop has nothing left.
  loop_thread_.join();
}

void AsyncExecutor::Enqueue(Pending pending) {
  instant_clock_uses_ = 0;
  if (pending.cancel->cancelled()) {
    ReportNotStarted(pending.assignment, "job cancelled");
    FinishOne();
    return;
  }
  if (queue_.empty() &&
      TryRunInstant(pending.assignment, pending.cancel, pending.own_token)) {
    // Delivered with the results of the other Submit()s of this loop turn.
    ScheduleFlush();
    return;
  }
  queue_.push_back(std::move(pending));
  StartMore();
  ScheduleFlush();
}

void AsyncExecutor::EnqueueBatch(Batch batch) {
  instant_clock_uses_ = 0;
  size_t begin = 0;
  for (const auto& [end, cancel] : batch.runs) {
    for (size_t i = begin; i < end; ++i) {
      v1::Assignment& assignment = batch.assignments[i];
      if (cancel->cancelled()) {
        ReportNotStarted(assignment, "job cancelled");
        FinishOne();
        continue;
      }
      // Run in place when nothing waits ahead of it.
      if (queue_.empty() &&
          TryRunInstant(assignment, cancel, batch.own_tokens)) {
        continue;
      }
      queue_.push_back({std::move(assignment), cancel, batch.own_tokens});
    }
    begin = end;
  }
  StartMore();
  Flush();
  // The messages of the tasks run in place keep their allocations: the
  // submitter may fill them again (TakeSpentAssignments()).
  absl::MutexLock lock(&spent_mu_);
  if (spent_.size() < kMaxSpentBatches) {
    spent_.push_back(std::move(batch.assignments));
  }
}

void AsyncExecutor::TakeSpentAssignments(std::vector<v1::Assignment>& spares) {
  spares.clear();
  absl::MutexLock lock(&spent_mu_);
  if (spent_.empty()) return;
  spares.swap(spent_.back());
  spent_.pop_back();
}

bool AsyncExecutor::TryRunInstant(v1::Assignment& assignment,
                                  const std::shared_ptr<CancelToken>& cancel,
                                  bool own_token) {
  if (on_start_ || !IsInstant(*kinds_, assignment.task())) return false;
  if (in_flight_ + static_cast<int64_t>(done_.size()) >= slots_) {
    // Undelivered results hold slots: delivering them frees those.
    Flush();
    if (in_flight_ >= slots_) return false;
  }
  // Echo tasks run back to back share a clock reading, taken again every
  // kInstantsPerClockRead tasks (they take well under a microsecond each).
  if (instant_clock_uses_ <= 0) {
    instant_now_us_ = clock_->NowMicros();
    instant_clock_uses_ = kInstantsPerClockRead;
  }
  --instant_clock_uses_;
  RunEcho(assignment, worker_name_, kLabel, instant_now_us_, &done_.Next());
  ReleaseLater(assignment.job_id(), cancel, own_token);
  return true;
}

void AsyncExecutor::StartMore() {
  instant_clock_uses_ = 0;
  while (!queue_.empty()) {
    Pending& front = queue_.front();
    if (front.cancel->cancelled()) {
      ReportNotStarted(front.assignment, "job cancelled");
      queue_.pop_front();
      FinishOne();
      continue;
    }
    if (TryRunInstant(front.assignment, front.cancel, front.own_token)) {
      queue_.pop_front();
      continue;
    }
    if (in_flight_ + static_cast<int64_t>(done_.size()) >= slots_) break;
    Pending pending = std::move(front);
    queue_.pop_front();
    Start(std::move(pending));
  }
}

void AsyncExecutor::Start(Pending pending) {
  ++in_flight_;
  const v1::Task& task = pending.assignment.task();
  const Kinds::Kind* kind = KindOf(*kinds_, task);
  if (kind != nullptr && kind->builtin == Kinds::Builtin::kSleep) {
    const int64_t started_us = clock_->NowMicros();
    if (on_start_) on_start_(pending.assignment);
    TaskOutcome refused = CheckRunnable(*kinds_, task);
    if (refused.state != v1::TASK_STATE_UNSPECIFIED) {
      Complete(pending, std::move(refused), started_us);
      return;
    }
    StartSleep(std::move(pending), started_us);
    return;
  }
  // http (a transfer on the loop), coroutine forms, cpu and blocking forms
  // (they hold up the loop), invalid tasks and kinds not offered.
  // The coroutine may start right here, and cpu work then holds up the
  // loop: results waiting for delivery go out first.
  Flush();
  asio::co_spawn(io_, Run(std::move(pending)), asio::detached);
}

void AsyncExecutor::StartSleep(Pending pending, int64_t started_us) {
  const auto deadline =
      std::chrono::steady_clock::now() +
      absl::ToChronoMicroseconds(SleepWaitTime(pending.assignment.task()));
  sleepers_.Add(deadline,
                {.pending = std::make_unique<Pending>(std::move(pending)),
                 .started_us = started_us});
}

void AsyncExecutor::OnSleepTimer() {
  sleepers_.TakeDue(std::chrono::steady_clock::now(),
                    [this](Sleeping sleeping) {
                      const Pending& pending = *sleeping.pending;
                      Complete(pending,
                               pending.cancel->cancelled()
                                   ? CancelledOutcome("job cancelled")
                                   : SleepOutcome(pending.assignment.task()),
                               sleeping.started_us);
                      // Thousands of sleeps ending at once leave in batches, so
                      // the sink can send some while the rest are finished.
                      if (done_.size() >= kMaxFlush) Flush();
                    });
  Flush();
  StartMore();
  Flush();
}

void AsyncExecutor::Complete(const Pending& pending, TaskOutcome outcome,
                             int64_t started_us) {
  MakeResultInto(pending.assignment, std::move(outcome), worker_name_, kLabel,
                 started_us, clock_->NowMicros(), &done_.Next());
  ReleaseLater(pending.assignment.job_id(), pending.cancel, pending.own_token);
  --in_flight_;
}

void AsyncExecutor::ReleaseLater(uint64_t job_id,
                                 const std::shared_ptr<CancelToken>& cancel,
                                 bool own_token) {
  if (!own_token) return;
  if (cancel != release_token_) {
    ReleaseTokens();
    release_token_ = cancel;
    release_job_ = job_id;
  }
  ++release_count_;
}

void AsyncExecutor::ReleaseTokens() {
  if (release_count_ > 0) {
    cancels_.Release(release_job_, release_token_, release_count_);
  }
  release_token_ = nullptr;
  release_count_ = 0;
}

void AsyncExecutor::Flush() {
  ReleaseTokens();
  if (done_.empty()) return;
  const int64_t n = static_cast<int64_t>(done_.size());
  done_.FlushTo(sink_);
  FinishOne(n);
}

void AsyncExecutor::ScheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  asio::post(io_, [this] {
    flush_scheduled_ = false;
    Flush();
    StartMore();
    Flush();
  });
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
  for (const Pending& pending : dropped) {
    ReportNotStarted(pending.assignment, "job cancelled");
    FinishOne();
  }
  // Sleepers stop now: they are taken out of the heap and reported.
  sleepers_.TakeIf(
      [&cancel](const Sleeping& sleeping) {
        return sleeping.pending->cancel.get() == &cancel;
      },
      [this](Sleeping sleeping) {
        Complete(*sleeping.pending, CancelledOutcome("job cancelled"),
                 sleeping.started_us);
      });
  // http coroutines resume later, with operation_aborted, and stop.
  if (auto it = waiting_.find(&cancel); it != waiting_.end()) {
    for (asio::steady_timer* timer : it->second) timer->cancel();
  }
  Flush();
  StartMore();
  Flush();
}

asio::awaitable<void> AsyncExecutor::Run(Pending pending) {
  const v1::Assignment& assignment = pending.assignment;
  const int64_t started_us = clock_->NowMicros();
  if (on_start_) on_start_(assignment);
  TaskOutcome outcome;
  const Kinds::Kind* kind = KindOf(*kinds_, assignment.task());
  if (kind != nullptr && kind->builtin == Kinds::Builtin::kHttp) {
    outcome = co_await Http(pending);
  } else if (kind != nullptr && kind->builtin == Kinds::Builtin::kNone &&
             kind->coroutine != nullptr) {
    outcome = co_await Coroutine(pending, *kind);
  } else {
    // Invalid tasks and kinds not offered fail at once; cpu and blocking
    // forms hold up the loop.
    outcome = RunTaskBlocking(*kinds_, assignment.task(), *pending.cancel);
  }
  Complete(pending, std::move(outcome), started_us);
  ScheduleFlush();
}

HttpMulti& AsyncExecutor::http() {
  if (http_ == nullptr) http_ = std::make_unique<HttpMulti>(io_);
  return *http_;
}

asio::awaitable<TaskOutcome> AsyncExecutor::Coroutine(const Pending& pending,
                                                      const Kinds::Kind& kind) {
  const v1::Task& task = pending.assignment.task();
  TaskOutcome refused = CheckRunnable(*kinds_, task);
  if (refused.state != v1::TASK_STATE_UNSPECIFIED) co_return refused;
  const CancelToken* cancel = pending.cancel.get();
  // Cancelled by DropCancelled(); expires at the task's deadline.
  asio::steady_timer wake(io_);
  waiting_[cancel].insert(&wake);
  TaskOutcome outcome =
      co_await RunRegisteredCoroutine(kind, task, *cancel, *this, wake);
  Unwait(cancel, &wake);
  co_return outcome;
}

asio::awaitable<TaskOutcome> AsyncExecutor::Http(const Pending& pending) {
  const v1::Task& task = pending.assignment.task();
  TaskOutcome refused = CheckRunnable(*kinds_, task);
  if (refused.state != v1::TASK_STATE_UNSPECIFIED) co_return refused;
  const CancelToken* cancel = pending.cancel.get();
  if (cancel->cancelled()) co_return CancelledOutcome("job cancelled");
  HttpMulti& multi = http();

  // Woken by the transfer's end, or by DropCancelled().
  asio::steady_timer wake(io_, asio::steady_timer::time_point::max());
  std::optional<TaskOutcome> outcome;
  // The callback runs on a later loop turn, while this frame waits.
  const HttpMulti::TransferId transfer =
      multi.Start(task, [&outcome, &wake](TaskOutcome done) {
        outcome = std::move(done);
        wake.cancel();
      });
  waiting_[cancel].insert(&wake);
  std::error_code error;
  co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, error));
  Unwait(cancel, &wake);

  if (cancel->cancelled()) {
    multi.Cancel(transfer);  // No effect if it finished meanwhile.
    co_return CancelledOutcome("job cancelled");
  }
  if (!outcome) {  // Only a cancel wakes the timer early.
    multi.Cancel(transfer);
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

void AsyncExecutor::FinishOne(int64_t n) {
  if (n == 0) return;
  absl::MutexLock lock(&mu_);
  unfinished_ -= n;
}

}  // namespace qfarm::executors
