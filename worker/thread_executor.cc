#include "worker/thread_executor.h"

#include <pthread.h>

#include <algorithm>
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

void ThreadExecutor::TaskQueue::pop_front() {
  --size_;
  if (++head_ == chunks_.front().items.size()) {
    chunks_.pop_front();
    head_ = 0;
  }
}

void ThreadExecutor::TaskQueue::push_back(Queued item) {
  if (chunks_.empty()) chunks_.emplace_back();
  chunks_.back().items.push_back(std::move(item));
  chunks_.back().all_instant = false;
  ++size_;
}

void ThreadExecutor::TaskQueue::push_chunk(std::vector<Queued> chunk,
                                           bool all_instant) {
  if (chunk.empty()) return;
  size_ += chunk.size();
  chunks_.push_back({std::move(chunk), all_instant});
}

bool ThreadExecutor::TaskQueue::TakeInstantChunk(size_t max,
                                                 std::vector<Queued>* out) {
  if (chunks_.empty() || head_ != 0 || !chunks_.front().all_instant ||
      chunks_.front().items.size() > max) {
    return false;
  }
  *out = std::move(chunks_.front().items);
  size_ -= out->size();
  chunks_.pop_front();
  return true;
}

template <typename Drop>
std::vector<ThreadExecutor::Queued> ThreadExecutor::TaskQueue::RemoveIf(
    Drop drop) {
  std::vector<Queued> dropped;
  std::vector<Queued> kept;
  while (!empty()) {
    (drop(front()) ? dropped : kept).push_back(std::move(front()));
    pop_front();
  }
  push_chunk(std::move(kept), false);
  return dropped;
}

void ThreadExecutor::SubmitBatch(std::vector<v1::Assignment> assignments) {
  if (assignments.empty()) return;
  // Built outside the lock: the threads keep taking tasks meanwhile.
  std::vector<Queued> chunk;
  chunk.reserve(assignments.size());
  bool all_instant = true;
  size_t i = 0;
  while (i < assignments.size()) {
    // One token for each run of tasks of the same job.
    const uint64_t job = assignments[i].job_id();
    size_t end = i + 1;
    while (end < assignments.size() && assignments[end].job_id() == job) {
      ++end;
    }
    std::shared_ptr<CancelToken> cancel =
        cancels_.Acquire(job, static_cast<int64_t>(end - i));
    for (; i < end; ++i) {
      all_instant = all_instant && IsInstant(assignments[i].task());
      chunk.push_back({std::move(assignments[i]), cancel, true});
    }
  }
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      unfinished_ += static_cast<int64_t>(chunk.size());
      queue_.push_chunk(std::move(chunk), all_instant);
      return;
    }
  }
  // Not counted in unfinished_: reported here and now.
  for (const Queued& item : chunk) {
    cancels_.Release(item.assignment.job_id(), item.cancel);
    sink_->OnResult(MakeResult(item.assignment,
                               CancelledOutcome("executor is shut down"),
                               worker_name_, label_, 0, clock_->NowMicros()));
  }
}

void ThreadExecutor::SubmitWithToken(v1::Assignment assignment,
                                     std::shared_ptr<CancelToken> cancel) {
  QFARM_CHECK(cancel != nullptr) << "SubmitWithToken needs a token";
  Accept(std::move(assignment), std::move(cancel));
}

void ThreadExecutor::SubmitBatchWithTokens(
    std::vector<std::pair<v1::Assignment, std::shared_ptr<CancelToken>>>
        batch) {
  for (const auto& item : batch) {
    QFARM_CHECK(item.second != nullptr) << "SubmitWithToken needs a token";
  }
  AcceptBatch(std::move(batch));
}

void ThreadExecutor::AcceptBatch(
    std::vector<std::pair<v1::Assignment, std::shared_ptr<CancelToken>>>
        batch) {
  if (batch.empty()) return;
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      size_t i = 0;
      while (i < batch.size()) {
        if (batch[i].second != nullptr) {
          queue_.push_back(
              {std::move(batch[i].first), std::move(batch[i].second), false});
          ++i;
          continue;
        }
        // One token for each run of tasks of the same job.
        const uint64_t job = batch[i].first.job_id();
        size_t end = i + 1;
        while (end < batch.size() && batch[end].second == nullptr &&
               batch[end].first.job_id() == job) {
          ++end;
        }
        std::shared_ptr<CancelToken> cancel =
            cancels_.Acquire(job, static_cast<int64_t>(end - i));
        for (; i < end; ++i) {
          queue_.push_back({std::move(batch[i].first), cancel, true});
        }
      }
      unfinished_ += static_cast<int64_t>(batch.size());
      return;
    }
  }
  // Not counted in unfinished_: reported here and now.
  for (const auto& item : batch) {
    sink_->OnResult(MakeResult(item.first,
                               CancelledOutcome("executor is shut down"),
                               worker_name_, label_, 0, clock_->NowMicros()));
  }
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
    dropped = queue_.RemoveIf(
        [&cancel](const Queued& item) { return item.cancel == cancel; });
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
  std::vector<Queued> run;
  std::vector<Queued> dropped;
  ResultBuffer results;
  for (;;) {
    Queued item;
    bool cancelled_in_queue = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &ThreadExecutor::HasWorkOrStop));
      if (queue_.empty()) return;  // stop_: nothing is left to run.
      // A fair share of the queue, so the other threads get some too.
      const size_t take = std::clamp<size_t>(
          queue_.size() / static_cast<size_t>(slots_), 1, kMaxInstantRun);
      if (!on_start_ && queue_.TakeInstantChunk(take, &run)) {
        // A whole chunk at once; cancelled tasks are sorted out below.
      } else if (!on_start_ && IsInstant(queue_.front().assignment.task())) {
        while (run.size() + dropped.size() < take && !queue_.empty() &&
               IsInstant(queue_.front().assignment.task())) {
          // Checked under mu_, as below.
          (queue_.front().cancel->cancelled() ? dropped : run)
              .push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      } else {
        item = std::move(queue_.front());
        queue_.pop_front();
        // Checked under mu_, so a task popped before a CancelJob() started.
        cancelled_in_queue = item.cancel->cancelled();
      }
    }
    if (!run.empty() || !dropped.empty()) {
      // A job cancelled after its tasks left the queue: those not run yet
      // are not started.
      if (std::any_of(run.begin(), run.end(), [](const Queued& item) {
            return item.cancel->cancelled();
          })) {
        std::vector<Queued> keep;
        for (Queued& item : run) {
          (item.cancel->cancelled() ? dropped : keep)
              .push_back(std::move(item));
        }
        run = std::move(keep);
      }
      for (const Queued& cancelled : dropped) {
        ReportNotStarted(cancelled.assignment, "job cancelled");
      }
      FinishOne(static_cast<int64_t>(dropped.size()));
      dropped.clear();
      if (!run.empty()) RunInstant(run, label, results);
      run.clear();
      continue;
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

void ThreadExecutor::RunInstant(std::vector<Queued>& run,
                                const std::string& label,
                                ResultBuffer& results) {
  // Tasks run back to back share a clock reading, taken again every 16
  // tasks (they take well under a microsecond each).
  int64_t now_us = 0;
  for (size_t i = 0; i < run.size(); ++i) {
    if (i % 16 == 0) now_us = clock_->NowMicros();
    RunEcho(run[i].assignment, worker_name_, label, now_us, &results.Next());
  }
  // One release for each run of tasks sharing a token.
  size_t i = 0;
  while (i < run.size()) {
    size_t end = i + 1;
    while (end < run.size() && run[end].cancel == run[i].cancel &&
           run[end].own_token == run[i].own_token) {
      ++end;
    }
    if (run[i].own_token) {
      cancels_.Release(run[i].assignment.job_id(), run[i].cancel,
                       static_cast<int64_t>(end - i));
    }
    i = end;
  }
  const int64_t n = static_cast<int64_t>(results.size());
  results.FlushTo(sink_);
  FinishOne(n);
  // Their messages keep their allocations: the submitter may fill them
  // again (TakeSpentAssignments()).
  std::vector<v1::Assignment> spent;
  spent.reserve(run.size());
  for (Queued& item : run) spent.push_back(std::move(item.assignment));
  absl::MutexLock lock(&spent_mu_);
  if (spent_.size() < kMaxSpentBatches) spent_.push_back(std::move(spent));
}

void ThreadExecutor::TakeSpentAssignments(std::vector<v1::Assignment>& spares) {
  spares.clear();
  absl::MutexLock lock(&spent_mu_);
  if (spent_.empty()) return;
  spares.swap(spent_.back());
  spent_.pop_back();
}

void ThreadExecutor::ReportNotStarted(const v1::Assignment& assignment,
                                      absl::string_view why) {
  sink_->OnResult(MakeResult(assignment, CancelledOutcome(why), worker_name_,
                             label_, 0, clock_->NowMicros()));
}

bool ThreadExecutor::HasWorkOrStop() const { return !queue_.empty() || stop_; }

void ThreadExecutor::FinishOne(int64_t n) {
  if (n == 0) return;
  absl::MutexLock lock(&mu_);
  unfinished_ -= n;
}

}  // namespace qfarm::worker
