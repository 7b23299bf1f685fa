#include "executors/thread_executor.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "executors/kind_runner.h"

namespace qfarm::executors {
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
      kinds_(options.kinds != nullptr ? options.kinds : &BuiltInKinds()),
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

void ThreadExecutor::Chunk::Add(v1::Assignment assignment,
                                const std::shared_ptr<CancelToken>& cancel,
                                bool own_token) {
  items.push_back(std::move(assignment));
  if (!runs.empty() && runs.back().cancel == cancel &&
      runs.back().own_token == own_token) {
    runs.back().end = items.size();
  } else {
    runs.push_back({items.size(), cancel, own_token});
  }
}

void ThreadExecutor::TaskQueue::pop_front() {
  --size_;
  Chunk& chunk = chunks_.front();
  if (++head_ == chunk.items.size()) {
    chunks_.pop_front();
    head_ = 0;
    run_head_ = 0;
  } else if (head_ == chunk.runs[run_head_].end) {
    ++run_head_;
  }
}

void ThreadExecutor::TaskQueue::push_back(
    v1::Assignment assignment, const std::shared_ptr<CancelToken>& cancel,
    bool own_token) {
  if (chunks_.empty()) chunks_.emplace_back();
  chunks_.back().Add(std::move(assignment), cancel, own_token);
  chunks_.back().all_instant = false;
  ++size_;
}

void ThreadExecutor::TaskQueue::push_chunk(Chunk chunk) {
  if (chunk.items.empty()) return;
  size_ += chunk.items.size();
  chunks_.push_back(std::move(chunk));
}

bool ThreadExecutor::TaskQueue::TakeInstantChunk(size_t max, Chunk* out) {
  if (chunks_.empty() || head_ != 0 || !chunks_.front().all_instant ||
      chunks_.front().items.size() > max) {
    return false;
  }
  *out = std::move(chunks_.front());
  size_ -= out->items.size();
  chunks_.pop_front();
  return true;
}

std::vector<v1::Assignment> ThreadExecutor::TaskQueue::RemoveTasksOf(
    const std::shared_ptr<CancelToken>& cancel) {
  std::vector<v1::Assignment> dropped;
  Chunk kept;
  while (!empty()) {
    const Run& run = front_run();
    if (run.cancel == cancel) {
      dropped.push_back(std::move(front()));
    } else {
      kept.Add(std::move(front()), run.cancel, run.own_token);
    }
    pop_front();
  }
  push_chunk(std::move(kept));
  return dropped;
}

void ThreadExecutor::SubmitBatch(std::vector<v1::Assignment> assignments) {
  if (assignments.empty()) return;
  // Built outside the lock: the threads keep taking tasks meanwhile.
  Chunk chunk;
  chunk.all_instant = true;
  ForEachJobRun(assignments, [&](size_t begin, size_t end, uint64_t job) {
    for (size_t i = begin; i < end && chunk.all_instant; ++i) {
      chunk.all_instant = IsInstant(*kinds_, assignments[i].task());
    }
    chunk.runs.push_back(
        {end, cancels_.Acquire(job, static_cast<int64_t>(end - begin)), true});
  });
  chunk.items = std::move(assignments);
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      unfinished_ += static_cast<int64_t>(chunk.items.size());
      queue_.push_chunk(std::move(chunk));
      return;
    }
  }
  // Not counted in unfinished_: reported here and now.
  size_t begin = 0;
  for (const Run& run : chunk.runs) {
    cancels_.Release(chunk.items[begin].job_id(), run.cancel,
                     static_cast<int64_t>(run.end - begin));
    for (; begin < run.end; ++begin) {
      sink_->OnResult(MakeResult(chunk.items[begin],
                                 CancelledOutcome("executor is shut down"),
                                 worker_name_, label_, 0, clock_->NowMicros()));
    }
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
          queue_.push_back(std::move(batch[i].first), batch[i].second, false);
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
          queue_.push_back(std::move(batch[i].first), cancel, true);
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
      queue_.push_back(std::move(assignment), cancel, own_token);
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
  std::vector<v1::Assignment> dropped;
  {
    absl::MutexLock lock(&mu_);
    dropped = queue_.RemoveTasksOf(cancel);
  }
  for (const v1::Assignment& assignment : dropped) {
    ReportNotStarted(assignment, "job cancelled");
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
  Chunk run;
  std::vector<v1::Assignment> dropped;
  ResultBuffer results;
  // Results delivered since the thread last held mu_.
  int64_t finished = 0;
  for (;;) {
    Queued item;
    bool cancelled_in_queue = false;
    {
      absl::MutexLock lock(&mu_);
      unfinished_ -= finished;
      finished = 0;
      mu_.Await(absl::Condition(this, &ThreadExecutor::HasWorkOrStop));
      if (queue_.empty()) return;  // stop_: nothing is left to run.
      if (!TakeInstantsLocked(run, dropped)) {
        const Run& from = queue_.front_run();
        item = {std::move(queue_.front()), from.cancel, from.own_token};
        queue_.pop_front();
        // Checked under mu_, so a task popped before a CancelJob() started.
        cancelled_in_queue = item.cancel->cancelled();
      }
    }
    if (!run.items.empty() || !dropped.empty()) {
      finished += RunTaken(run, dropped, label, results);
    } else {
      RunQueued(item, cancelled_in_queue, label);
      ++finished;
    }
  }
}

bool ThreadExecutor::TakeInstantsLocked(Chunk& run,
                                        std::vector<v1::Assignment>& dropped) {
  if (on_start_) return false;
  // A whole chunk of instant tasks at once, however short the queue:
  // splitting it would cost a move per task, more than running them.
  // Cancelled tasks are sorted out by RunTaken().
  if (queue_.TakeInstantChunk(kMaxInstantRun, &run)) return true;
  if (!IsInstant(*kinds_, queue_.front().task())) return false;
  // A fair share of the queue, so the other threads get some too.
  const size_t take = std::clamp<size_t>(
      queue_.size() / static_cast<size_t>(slots_), 1, kMaxInstantRun);
  while (run.items.size() + dropped.size() < take && !queue_.empty() &&
         IsInstant(*kinds_, queue_.front().task())) {
    const Run& from = queue_.front_run();
    // Checked under mu_, as in WorkerLoop().
    if (from.cancel->cancelled()) {
      dropped.push_back(std::move(queue_.front()));
    } else {
      run.Add(std::move(queue_.front()), from.cancel, from.own_token);
    }
    queue_.pop_front();
  }
  return true;
}

int64_t ThreadExecutor::RunTaken(Chunk& run,
                                 std::vector<v1::Assignment>& dropped,
                                 const std::string& label,
                                 ResultBuffer& results) {
  // A job cancelled after its tasks left the queue: those not run yet are
  // not started.
  if (std::any_of(run.runs.begin(), run.runs.end(),
                  [](const Run& r) { return r.cancel->cancelled(); })) {
    Chunk keep;
    size_t begin = 0;
    for (const Run& r : run.runs) {
      for (; begin < r.end; ++begin) {
        if (r.cancel->cancelled()) {
          dropped.push_back(std::move(run.items[begin]));
        } else {
          keep.Add(std::move(run.items[begin]), r.cancel, r.own_token);
        }
      }
    }
    run = std::move(keep);
  }
  for (const v1::Assignment& cancelled : dropped) {
    ReportNotStarted(cancelled, "job cancelled");
  }
  int64_t finished = static_cast<int64_t>(dropped.size());
  dropped.clear();
  if (!run.items.empty()) {
    finished += static_cast<int64_t>(run.items.size());
    RunInstant(run, label, results);
  }
  run.items.clear();
  run.runs.clear();
  return finished;
}

void ThreadExecutor::RunQueued(const Queued& item, bool cancelled_in_queue,
                               const std::string& label) {
  const v1::Assignment& assignment = item.assignment;
  if (cancelled_in_queue) {
    ReportNotStarted(assignment, "job cancelled");
    return;
  }
  const int64_t started_us = clock_->NowMicros();
  if (on_start_) on_start_(assignment);
  TaskOutcome outcome =
      RunTaskBlocking(*kinds_, assignment.task(), *item.cancel);
  const int64_t finished_us = clock_->NowMicros();
  if (item.own_token) cancels_.Release(assignment.job_id(), item.cancel);
  sink_->OnResult(MakeResult(assignment, std::move(outcome), worker_name_,
                             label, started_us, finished_us));
}

void ThreadExecutor::RunInstant(Chunk& run, const std::string& label,
                                ResultBuffer& results) {
  // Tasks run back to back share a clock reading, taken again every 16
  // tasks (they take well under a microsecond each).
  int64_t now_us = 0;
  for (size_t i = 0; i < run.items.size(); ++i) {
    if (i % 16 == 0) now_us = clock_->NowMicros();
    RunEcho(run.items[i], worker_name_, label, now_us, &results.Next());
  }
  // One release for each run of tasks sharing a token.
  size_t begin = 0;
  for (const Run& r : run.runs) {
    if (r.own_token) {
      cancels_.Release(run.items[begin].job_id(), r.cancel,
                       static_cast<int64_t>(r.end - begin));
    }
    begin = r.end;
  }
  results.FlushTo(sink_);
  // Their messages keep their allocations: the submitter may fill them
  // again (TakeSpentAssignments()).
  absl::MutexLock lock(&spent_mu_);
  if (spent_taken_ ? spent_tasks_ + run.items.size() <= kMaxSpentTasks
                   : spent_.size() < kMaxSpentBatches) {
    spent_tasks_ += run.items.size();
    spent_.push_back(std::move(run.items));
  }
}

void ThreadExecutor::TakeSpentAssignments(std::vector<v1::Assignment>& spares) {
  spares.clear();
  absl::MutexLock lock(&spent_mu_);
  spent_taken_ = true;
  if (spent_.empty()) return;
  spares.swap(spent_.back());
  spent_.pop_back();
  spent_tasks_ -= spares.size();
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

}  // namespace qfarm::executors
