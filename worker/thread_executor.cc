#include "worker/thread_executor.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace qfarm::worker {
namespace {

// Names the calling thread for debuggers and top(1); Linux keeps 15 bytes.
void NameThisThread(const std::string& label) {
  pthread_setname_np(pthread_self(), label.substr(0, 15).c_str());
}

}  // namespace

ThreadExecutor::ThreadExecutor(const ExecutorOptions& options,
                               StartHook on_start_for_testing,
                               std::string label)
    : mode_(options.mode),
      slots_(options.mode == Mode::kSerial ? 1 : options.slots),
      label_(label.empty() ? std::string(ModeName(options.mode))
                           : std::move(label)),
      worker_name_(options.worker_name),
      clock_(options.clock != nullptr ? options.clock : Clock::Real()),
      sink_(options.sink),
      on_start_(std::move(on_start_for_testing)) {
  QFARM_CHECK(mode_ == Mode::kSerial || mode_ == Mode::kThread)
      << "ThreadExecutor runs serial or thread mode, not " << ModeName(mode_);
  QFARM_CHECK(slots_ >= 1) << "slots must be positive, got " << slots_;
  QFARM_CHECK(sink_ != nullptr) << "an executor needs a result sink";
  absl::MutexLock lock(&join_mu_);
  threads_.reserve(slots_);
  for (int i = 0; i < slots_; ++i) {
    std::string label =
        mode_ == Mode::kSerial ? label_ : absl::StrCat(label_, "-", i);
    threads_.emplace_back([this, label = std::move(label)] {
      NameThisThread(label);
      WorkerLoop(label);
    });
  }
}

ThreadExecutor::~ThreadExecutor() { Shutdown(); }

void ThreadExecutor::Submit(v1::Assignment assignment) {
  Accept(std::move(assignment), nullptr);
}

void ThreadExecutor::SubmitWithToken(v1::Assignment assignment,
                                     std::shared_ptr<CancelToken> cancel) {
  QFARM_CHECK(cancel != nullptr) << "SubmitWithToken needs a token";
  Accept(std::move(assignment), std::move(cancel));
}

void ThreadExecutor::Accept(v1::Assignment assignment,
                            std::shared_ptr<CancelToken> cancel) {
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      const bool own_token = cancel == nullptr;
      if (own_token) cancel = cancels_.Acquire(assignment.job_id());
      queue_.push_back({std::move(assignment), std::move(cancel), own_token});
      ++unfinished_;
      return;
    }
  }
  // Not counted in unfinished_: reported here and now.
  sink_->OnResult(MakeResult(assignment,
                             CancelledOutcome("executor is shut down"),
                             worker_name_, label_, 0, clock_->NowMicros()));
}

void ThreadExecutor::CancelJob(uint64_t job_id) {
  std::shared_ptr<CancelToken> cancel = cancels_.Cancel(job_id);
  if (cancel == nullptr) return;  // Nothing unfinished.
  CancelTasks(cancel);
}

void ThreadExecutor::CancelTasks(const std::shared_ptr<CancelToken>& cancel) {
  cancel->Cancel();
  // Running tasks wake on the token; queued ones are reported here rather
  // than when a thread frees up.
  std::vector<Queued> dropped;
  {
    absl::MutexLock lock(&mu_);
    std::deque<Queued> kept;
    for (Queued& item : queue_) {
      if (item.cancel == cancel) {
        dropped.push_back(std::move(item));
      } else {
        kept.push_back(std::move(item));
      }
    }
    queue_ = std::move(kept);
  }
  for (const Queued& item : dropped) {
    ReportNotStarted(item.assignment, "job cancelled");
    FinishOne();
  }
}

void ThreadExecutor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    mu_.Await(absl::Condition(
        +[](int64_t* unfinished) { return *unfinished == 0; }, &unfinished_));
    stop_ = true;
  }
  absl::MutexLock lock(&join_mu_);
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void ThreadExecutor::WorkerLoop(const std::string& label) {
  for (;;) {
    Queued item;
    bool cancelled_in_queue;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &ThreadExecutor::HasWorkOrStop));
      if (queue_.empty()) return;  // stop_: nothing is left to run.
      item = std::move(queue_.front());
      queue_.pop_front();
      // Checked under mu_, so a task popped before a CancelJob() started.
      cancelled_in_queue = item.cancel->cancelled();
    }
    const v1::Assignment& assignment = item.assignment;
    if (cancelled_in_queue) {
      ReportNotStarted(assignment, "job cancelled");
    } else {
      const int64_t started_us = clock_->NowMicros();
      if (on_start_) on_start_(assignment);
      TaskOutcome outcome = RunTaskBlocking(assignment.task(), *item.cancel);
      const int64_t finished_us = clock_->NowMicros();
      if (item.own_token) cancels_.Release(assignment.job_id(), item.cancel);
      sink_->OnResult(MakeResult(assignment, std::move(outcome), worker_name_,
                                 label, started_us, finished_us));
    }
    FinishOne();
  }
}

void ThreadExecutor::ReportNotStarted(const v1::Assignment& assignment,
                                      absl::string_view why) {
  sink_->OnResult(MakeResult(assignment, CancelledOutcome(why), worker_name_,
                             label_, 0, clock_->NowMicros()));
}

bool ThreadExecutor::HasWorkOrStop() const { return !queue_.empty() || stop_; }

void ThreadExecutor::FinishOne() {
  absl::MutexLock lock(&mu_);
  --unfinished_;
}

}  // namespace qfarm::worker
