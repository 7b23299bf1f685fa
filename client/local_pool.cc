#include "client/local_pool.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "executors/task_kinds.h"

namespace qfarm::client {
namespace {

// Tasks handed to the executor in one SubmitBatch().
constexpr size_t kSubmitChunk = 1024;
constexpr size_t kMinWindow = 65'536;

// Hands results from executor threads to the calling thread, one executor
// batch at a time, and the vectors of consumed batches back to the
// executors, whose messages they fill again (see ResultSink::OnResults).
class QueueSink : public executors::ResultSink {
 public:
  // Keeps at most `max_spares` consumed messages: as many as the tasks in
  // flight, so that the messages of one window circulate and no more are
  // made or freed.
  explicit QueueSink(size_t max_spares) : max_spares_(max_spares) {}

  void OnResult(v1::TaskResult result) override {
    absl::MutexLock lock(&mu_);
    ready_.emplace_back().push_back(std::move(result));
  }

  void OnResults(std::vector<v1::TaskResult>& results) override {
    absl::MutexLock lock(&mu_);
    ready_.push_back(std::move(results));
    results.clear();
    if (!spares_.empty()) {
      results.swap(spares_.back());
      spares_.pop_back();
      spare_count_ -= results.size();
    }
  }

  // Blocks until a batch is ready and moves it into `batch`, whose previous
  // (consumed) messages go back for reuse.
  void Take(std::vector<v1::TaskResult>& batch) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::deque<std::vector<v1::TaskResult>>* ready) {
          return !ready->empty();
        },
        &ready_));
    if (!batch.empty() && spare_count_ + batch.size() <= max_spares_) {
      spare_count_ += batch.size();
      spares_.push_back(std::move(batch));
    }
    batch = std::move(ready_.front());
    ready_.pop_front();
  }

 private:
  const size_t max_spares_;
  absl::Mutex mu_;
  std::deque<std::vector<v1::TaskResult>> ready_ ABSL_GUARDED_BY(mu_);
  // Consumed batches, for the executors to fill again.
  std::vector<std::vector<v1::TaskResult>> spares_ ABSL_GUARDED_BY(mu_);
  // Messages in spares_.
  size_t spare_count_ ABSL_GUARDED_BY(mu_) = 0;
};

using OnResults = std::function<void(std::vector<v1::TaskResult>& batch)>;

size_t WindowOf(const LocalPoolOptions& options) {
  return options.window > 0
             ? options.window
             : std::max(kMinWindow, 2 * static_cast<size_t>(options.slots));
}

// One run of `count` tasks on a fresh executor: hands it more tasks while
// the window has room, and the caller their results, on the calling
// thread. fill(i, task) puts the i-th task into `task`, a message that may
// hold an earlier task.
template <typename Fill>
class BatchRun {
 public:
  BatchRun(size_t count, Fill fill, const LocalPoolOptions& options,
           const OnResults& on_results)
      : count_(count),
        fill_(std::move(fill)),
        options_(options),
        on_results_(on_results),
        window_(WindowOf(options)),
        sink_(window_),
        executor_(executors::MakeExecutor({.mode = options.mode,
                                           .slots = options.slots,
                                           .worker_name = "local",
                                           .sink = &sink_,
                                           .kinds = options.kinds})) {}

  void Run() {
    ScopedInterruptHandler on_interrupt(options_.interrupt, [this] {
      interrupted_ = true;
      executor_->CancelJob(0);
    });
    SubmitMore();
    while (received_ < count_) {
      sink_.Take(batch_);
      for (v1::TaskResult& result : batch_) {
        result.set_queued_us(queued_us_);
        result.set_dispatched_us(queued_us_);
      }
      received_ += batch_.size();
      on_results_(batch_);
      SubmitMore();
    }
    executor_->Shutdown();
  }

 private:
  // Hands the executor more tasks while the window has room. After an
  // interrupt, the tasks not handed over yet are reported cancelled here.
  void SubmitMore() {
    while (submitted_ < count_ && submitted_ - received_ < window_) {
      if (interrupted_) {
        CancelUnsubmitted();
        return;
      }
      const size_t n = std::min({kSubmitChunk, count_ - submitted_,
                                 window_ - (submitted_ - received_)});
      std::vector<v1::Assignment> chunk = SpentAssignments(n);
      for (size_t i = 0; i < n; ++i) {
        chunk[i].set_job_id(0);
        chunk[i].set_index(static_cast<uint32_t>(submitted_ + i));
        chunk[i].set_attempt(1);
        fill_(submitted_ + i, chunk[i].mutable_task());
      }
      executor_->SubmitBatch(std::move(chunk));
      submitted_ += n;
      // An interrupt that came while the chunk was on its way missed it.
      if (interrupted_) executor_->CancelJob(0);
    }
  }

  // `n` assignments to fill: spent ones, whose messages keep their
  // allocations, then new ones. The executor hands them back in runs of
  // any size, so a short run is topped up and the rest of a long one kept
  // for later.
  std::vector<v1::Assignment> SpentAssignments(size_t n) {
    std::vector<v1::Assignment> chunk;
    executor_->TakeSpentAssignments(chunk);
    while (chunk.size() < n) {
      if (reserve_.empty()) executor_->TakeSpentAssignments(reserve_);
      if (reserve_.empty()) break;
      while (chunk.size() < n && !reserve_.empty()) {
        chunk.push_back(std::move(reserve_.back()));
        reserve_.pop_back();
      }
    }
    while (chunk.size() > n && reserve_.size() < window_) {
      reserve_.push_back(std::move(chunk.back()));
      chunk.pop_back();
    }
    chunk.resize(n);
    return chunk;
  }

  // Reports every task not handed to the executor as cancelled.
  void CancelUnsubmitted() {
    batch_.clear();
    for (; submitted_ < count_; ++submitted_) {
      v1::Assignment assignment;
      assignment.set_index(static_cast<uint32_t>(submitted_));
      assignment.set_attempt(1);
      batch_.push_back(executors::MakeResult(
          assignment, executors::CancelledOutcome("job cancelled"), "local",
          executors::ModeName(options_.mode), 0, Clock::Real()->NowMicros()));
      batch_.back().set_queued_us(queued_us_);
    }
    received_ += batch_.size();
    on_results_(batch_);
  }

  const size_t count_;
  Fill fill_;
  const LocalPoolOptions& options_;
  const OnResults& on_results_;
  const size_t window_;
  QueueSink sink_;
  std::unique_ptr<executors::Executor> executor_;
  std::atomic<bool> interrupted_{false};
  const int64_t queued_us_ = Clock::Real()->NowMicros();
  size_t submitted_ = 0;
  size_t received_ = 0;
  std::vector<v1::TaskResult> batch_;
  // Spent assignments not needed yet.
  std::vector<v1::Assignment> reserve_;
};

template <typename Fill>
absl::Status RunBatches(size_t count, Fill fill,
                        const LocalPoolOptions& options,
                        const OnResults& on_results) {
  BatchRun<Fill>(count, std::move(fill), options, on_results).Run();
  return absl::OkStatus();
}

}  // namespace

absl::Status RunLocalBatches(
    std::vector<v1::Task>&& tasks, const LocalPoolOptions& options,
    const std::function<void(std::vector<v1::TaskResult>& batch)>& on_results) {
  // Each task swaps places with the (spent) task its assignment held.
  return RunBatches(
      tasks.size(),
      [&tasks](size_t i, v1::Task* task) { task->Swap(&tasks[i]); }, options,
      on_results);
}

absl::Status RunLocal(const std::vector<v1::Task>& tasks,
                      const LocalPoolOptions& options,
                      const std::function<void(v1::TaskResult&&)>& on_result) {
  // Copied a chunk at a time, into messages that keep their allocations.
  return RunBatches(
      tasks.size(),
      [&tasks](size_t i, v1::Task* task) { task->CopyFrom(tasks[i]); }, options,
      [&on_result](std::vector<v1::TaskResult>& batch) {
        for (v1::TaskResult& result : batch) on_result(std::move(result));
      });
}

}  // namespace qfarm::client
