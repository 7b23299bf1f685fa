#include "executors/auto_executor.h"

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "executors/kind_runner.h"

namespace qfarm::executors {
namespace {

int CpuThreads(int slots) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, std::min(cores, slots));
}

}  // namespace

AutoExecutor::AutoExecutor(const ExecutorOptions& options,
                           StartHook on_start_for_testing)
    : slots_(options.slots),
      kinds_(options.kinds != nullptr ? options.kinds : &BuiltInKinds()),
      worker_name_(options.worker_name),
      clock_(options.clock != nullptr ? options.clock : Clock::Real()),
      sink_(options.sink) {
  QFARM_CHECK(options.mode == Mode::kAuto)
      << "AutoExecutor runs auto mode, not " << ModeName(options.mode);
  QFARM_CHECK(slots_ >= 1) << "slots must be positive, got " << slots_;
  QFARM_CHECK(sink_ != nullptr) << "an executor needs a result sink";
  io_ = std::make_unique<AsyncExecutor>(
      ExecutorOptions{.mode = Mode::kAsync,
                      .slots = slots_,
                      .worker_name = worker_name_,
                      .clock = clock_,
                      .sink = &relay_,
                      .kinds = kinds_},
      on_start_for_testing);
  cpu_ = std::make_unique<ThreadExecutor>(
      ExecutorOptions{.mode = Mode::kThread,
                      .slots = CpuThreads(slots_),
                      .worker_name = worker_name_,
                      .clock = clock_,
                      .sink = &relay_,
                      .kinds = kinds_},
      on_start_for_testing, "cpu");
}

AutoExecutor::~AutoExecutor() { Shutdown(); }

AutoExecutor::TaskKey AutoExecutor::KeyOf(const v1::Assignment& assignment) {
  return {assignment.job_id(), assignment.index(), assignment.attempt()};
}

void AutoExecutor::Submit(v1::Assignment assignment) {
  Waiting waiting;
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      ++unfinished_;
      std::shared_ptr<CancelToken> cancel =
          cancels_.Acquire(assignment.job_id());
      waiting = {std::move(assignment), std::move(cancel)};
      if (in_flight_ >= slots_ || !queue_.empty()) {
        queue_.push_back(std::move(waiting));
        return;
      }
      Track(waiting);
    }
  }
  if (waiting.cancel == nullptr) {
    // Not counted in unfinished_: reported here and now.
    ReportNotStarted(assignment, "executor is shut down");
    return;
  }
  Forward(std::move(waiting));
}

void AutoExecutor::SubmitBatch(std::vector<v1::Assignment> assignments) {
  if (assignments.empty()) return;
  std::vector<Waiting> forward;
  bool accepted = false;
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      accepted = true;
      unfinished_ += static_cast<int64_t>(assignments.size());
      ForEachJobRun(assignments, [&](size_t begin, size_t end, uint64_t job) {
        mu_.AssertHeld();  // Called within this scope, for the analysis.
        std::shared_ptr<CancelToken> cancel =
            cancels_.Acquire(job, static_cast<int64_t>(end - begin));
        for (size_t i = begin; i < end; ++i) {
          Waiting waiting{std::move(assignments[i]), cancel};
          if (in_flight_ >= slots_ || !queue_.empty()) {
            queue_.push_back(std::move(waiting));
          } else {
            Track(waiting);
            forward.push_back(std::move(waiting));
          }
        }
      });
    }
  }
  if (!accepted) {
    // Not counted in unfinished_: reported here and now.
    for (const v1::Assignment& assignment : assignments) {
      ReportNotStarted(assignment, "executor is shut down");
    }
    return;
  }
  ForwardBatch(std::move(forward));
}

void AutoExecutor::CancelJob(uint64_t job_id) {
  std::shared_ptr<CancelToken> cancel = cancels_.Cancel(job_id);
  if (cancel == nullptr) return;  // Nothing unfinished.
  std::vector<Waiting> dropped;
  {
    absl::MutexLock lock(&mu_);
    std::deque<Waiting> kept;
    for (Waiting& waiting : queue_) {
      if (waiting.cancel == cancel) {
        dropped.push_back(std::move(waiting));
      } else {
        kept.push_back(std::move(waiting));
      }
    }
    queue_ = std::move(kept);
  }
  for (const Waiting& waiting : dropped) {
    ReportNotStarted(waiting.assignment, "job cancelled");
    FinishOne();
  }
  // Tasks handed on now or later carry the cancelled token: they stop, or
  // never start.
  io_->CancelTasks(cancel);
  cpu_->CancelTasks(cancel);
}

void AutoExecutor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    mu_.Await(absl::Condition(
        +[](int64_t* unfinished) { return *unfinished == 0; }, &unfinished_));
  }
  // Nothing is left in them; this stops their threads. Idempotent.
  io_->Shutdown();
  cpu_->Shutdown();
}

void AutoExecutor::Track(const Waiting& waiting) {
  ++in_flight_;
  forwarded_[KeyOf(waiting.assignment)].push_back(waiting.cancel);
}

bool AutoExecutor::OnPool(const v1::Assignment& assignment) const {
  if (IsInstant(*kinds_, assignment.task())) return false;
  const Kinds::Kind* kind = KindOf(*kinds_, assignment.task());
  return kind != nullptr && !kind->runs_on_loop();
}

void AutoExecutor::Forward(Waiting waiting) {
  if (OnPool(waiting.assignment)) {
    cpu_->SubmitWithToken(std::move(waiting.assignment),
                          std::move(waiting.cancel));
  } else {
    io_->SubmitWithToken(std::move(waiting.assignment),
                         std::move(waiting.cancel));
  }
}

void AutoExecutor::ForwardBatch(std::vector<Waiting> batch) {
  if (batch.empty()) return;
  std::vector<std::pair<v1::Assignment, std::shared_ptr<CancelToken>>> io;
  std::vector<std::pair<v1::Assignment, std::shared_ptr<CancelToken>>> cpu;
  for (Waiting& waiting : batch) {
    (OnPool(waiting.assignment) ? cpu : io)
        .emplace_back(std::move(waiting.assignment), std::move(waiting.cancel));
  }
  if (!io.empty()) io_->SubmitBatchWithTokens(std::move(io));
  if (!cpu.empty()) cpu_->SubmitBatchWithTokens(std::move(cpu));
}

void AutoExecutor::OnSubResults(std::vector<v1::TaskResult>& results) {
  if (results.empty()) return;
  std::vector<std::shared_ptr<CancelToken>> tokens;
  tokens.reserve(results.size());
  {
    absl::MutexLock lock(&mu_);
    for (const v1::TaskResult& result : results) {
      auto it = forwarded_.find(
          TaskKey{result.job_id(), result.index(), result.attempt()});
      QFARM_CHECK(it != forwarded_.end())
          << "auto executor: a result for a task it did not hand on (job "
          << result.job_id() << " index " << result.index() << ")";
      tokens.push_back(std::move(it->second.back()));
      it->second.pop_back();
      if (it->second.empty()) forwarded_.erase(it);
    }
  }
  // One release for each run of results sharing a token.
  size_t i = 0;
  while (i < results.size()) {
    size_t end = i + 1;
    while (end < results.size() && tokens[end] == tokens[i]) ++end;
    cancels_.Release(results[i].job_id(), tokens[i],
                     static_cast<int64_t>(end - i));
    i = end;
  }
  const int64_t n = static_cast<int64_t>(results.size());
  // Delivered before their slots are reused (see OnSubResult()).
  sink_->OnResults(results);
  std::vector<Waiting> next;
  {
    absl::MutexLock lock(&mu_);
    in_flight_ -= static_cast<int>(n);
    while (in_flight_ < slots_ && !queue_.empty()) {
      next.push_back(std::move(queue_.front()));
      queue_.pop_front();
      Track(next.back());
    }
  }
  ForwardBatch(std::move(next));
  FinishOne(n);
}

void AutoExecutor::OnSubResult(v1::TaskResult result) {
  std::shared_ptr<CancelToken> cancel;
  {
    absl::MutexLock lock(&mu_);
    auto it = forwarded_.find(
        TaskKey{result.job_id(), result.index(), result.attempt()});
    QFARM_CHECK(it != forwarded_.end())
        << "auto executor: a result for a task it did not hand on (job "
        << result.job_id() << " index " << result.index() << ")";
    cancel = std::move(it->second.back());
    it->second.pop_back();
    if (it->second.empty()) forwarded_.erase(it);
  }
  cancels_.Release(result.job_id(), cancel);
  // Delivered before its slot is reused, so that no observer ever sees more
  // than `slots_` tasks between their start and their result.
  sink_->OnResult(std::move(result));
  std::vector<Waiting> next;
  {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    while (in_flight_ < slots_ && !queue_.empty()) {
      next.push_back(std::move(queue_.front()));
      queue_.pop_front();
      Track(next.back());
    }
  }
  for (Waiting& waiting : next) Forward(std::move(waiting));
  FinishOne();
}

void AutoExecutor::ReportNotStarted(const v1::Assignment& assignment,
                                    absl::string_view why) {
  sink_->OnResult(MakeResult(assignment, CancelledOutcome(why), worker_name_,
                             kLabel, 0, clock_->NowMicros()));
}

void AutoExecutor::FinishOne(int64_t n) {
  if (n == 0) return;
  absl::MutexLock lock(&mu_);
  unfinished_ -= n;
}

}  // namespace qfarm::executors
