#include "client/local_pool.h"

#include <algorithm>
#include <atomic>
#include <deque>
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

// Runs `count` tasks; fill(i, task) puts the i-th into `task`, a message
// that may hold an earlier task.
template <typename Fill>
absl::Status RunBatches(
    size_t count, Fill fill, const LocalPoolOptions& options,
    const std::function<void(std::vector<v1::TaskResult>& batch)>& on_results) {
  const size_t window =
      options.window > 0
          ? options.window
          : std::max(kMinWindow, 2 * static_cast<size_t>(options.slots));
  QueueSink sink(window);
  std::unique_ptr<executors::Executor> executor =
      executors::MakeExecutor({.mode = options.mode,
                               .slots = options.slots,
                               .worker_name = "local",
                               .sink = &sink,
                               .kinds = options.kinds});
  std::atomic<bool> interrupted{false};
  ScopedInterruptHandler on_interrupt(options.interrupt,
                                      [&executor, &interrupted] {
                                        interrupted = true;
                                        executor->CancelJob(0);
                                      });
  const int64_t queued_us = Clock::Real()->NowMicros();
  size_t submitted = 0;
  size_t received = 0;
  std::vector<v1::TaskResult> batch;
  // Spent assignments not needed yet.
  std::vector<v1::Assignment> reserve;

  // Hands the executor more tasks while the window has room. After an
  // interrupt, the tasks not handed over yet are reported cancelled here.
  auto submit_more = [&] {
    while (submitted < count && submitted - received < window) {
      if (interrupted) {
        batch.clear();
        for (; submitted < count; ++submitted) {
          v1::Assignment assignment;
          assignment.set_index(static_cast<uint32_t>(submitted));
          assignment.set_attempt(1);
          batch.push_back(executors::MakeResult(
              assignment, executors::CancelledOutcome("job cancelled"), "local",
              executors::ModeName(options.mode), 0,
              Clock::Real()->NowMicros()));
          batch.back().set_queued_us(queued_us);
        }
        received += batch.size();
        on_results(batch);
        return;
      }
      const size_t n = std::min(
          {kSubmitChunk, count - submitted, window - (submitted - received)});
      // Spent assignments are filled again: their messages keep their
      // allocations. The executor hands them back in runs of any size, so
      // a short run is topped up and the rest of a long one kept for later.
      std::vector<v1::Assignment> chunk;
      executor->TakeSpentAssignments(chunk);
      while (chunk.size() < n) {
        if (reserve.empty()) executor->TakeSpentAssignments(reserve);
        if (reserve.empty()) break;
        while (chunk.size() < n && !reserve.empty()) {
          chunk.push_back(std::move(reserve.back()));
          reserve.pop_back();
        }
      }
      while (chunk.size() > n && reserve.size() < window) {
        reserve.push_back(std::move(chunk.back()));
        chunk.pop_back();
      }
      chunk.resize(n);
      for (size_t i = 0; i < n; ++i) {
        chunk[i].set_job_id(0);
        chunk[i].set_index(static_cast<uint32_t>(submitted + i));
        chunk[i].set_attempt(1);
        fill(submitted + i, chunk[i].mutable_task());
      }
      executor->SubmitBatch(std::move(chunk));
      submitted += n;
      // An interrupt that came while the chunk was on its way missed it.
      if (interrupted) executor->CancelJob(0);
    }
  };

  submit_more();
  while (received < count) {
    sink.Take(batch);
    for (v1::TaskResult& result : batch) {
      result.set_queued_us(queued_us);
      result.set_dispatched_us(queued_us);
    }
    received += batch.size();
    on_results(batch);
    submit_more();
  }
  executor->Shutdown();
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
