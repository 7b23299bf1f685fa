#include "client/local_pool.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "worker/task_kinds.h"

namespace qfarm::client {
namespace {

// Tasks handed to the executor in one SubmitBatch().
constexpr size_t kSubmitChunk = 1024;
constexpr size_t kMinWindow = 65'536;

// Hands results from executor threads to the calling thread, one executor
// batch at a time, and the vectors of consumed batches back to the
// executors, whose messages they fill again (see ResultSink::OnResults).
class QueueSink : public worker::ResultSink {
 public:
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
    if (!batch.empty() && spares_.size() < kMaxSpareBatches) {
      spares_.push_back(std::move(batch));
    }
    batch = std::move(ready_.front());
    ready_.pop_front();
  }

 private:
  static constexpr size_t kMaxSpareBatches = 64;

  absl::Mutex mu_;
  std::deque<std::vector<v1::TaskResult>> ready_ ABSL_GUARDED_BY(mu_);
  // Consumed batches, for the executors to fill again.
  std::vector<std::vector<v1::TaskResult>> spares_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status RunLocalBatches(
    const std::vector<v1::Task>& tasks, const LocalPoolOptions& options,
    const std::function<void(std::vector<v1::TaskResult>& batch)>& on_results) {
  QueueSink sink;
  std::unique_ptr<worker::Executor> executor =
      worker::MakeExecutor({.mode = options.mode,
                            .slots = options.slots,
                            .worker_name = "local",
                            .sink = &sink});
  std::atomic<bool> interrupted{false};
  ScopedInterruptHandler on_interrupt(options.interrupt,
                                      [&executor, &interrupted] {
                                        interrupted = true;
                                        executor->CancelJob(0);
                                      });
  const size_t window =
      options.window > 0
          ? options.window
          : std::max(kMinWindow, 2 * static_cast<size_t>(options.slots));
  const int64_t queued_us = Clock::Real()->NowMicros();
  size_t submitted = 0;
  size_t received = 0;
  std::vector<v1::TaskResult> batch;

  // Hands the executor more tasks while the window has room. After an
  // interrupt, the tasks not handed over yet are reported cancelled here.
  auto submit_more = [&] {
    while (submitted < tasks.size() && submitted - received < window) {
      if (interrupted) {
        batch.clear();
        for (; submitted < tasks.size(); ++submitted) {
          v1::Assignment assignment;
          assignment.set_index(static_cast<uint32_t>(submitted));
          assignment.set_attempt(1);
          batch.push_back(worker::MakeResult(
              assignment, worker::CancelledOutcome("job cancelled"), "local",
              worker::ModeName(options.mode), 0, Clock::Real()->NowMicros()));
          batch.back().set_queued_us(queued_us);
        }
        received += batch.size();
        on_results(batch);
        return;
      }
      const size_t n = std::min({kSubmitChunk, tasks.size() - submitted,
                                 window - (submitted - received)});
      // Spent assignments are filled again: their messages keep their
      // allocations.
      std::vector<v1::Assignment> chunk;
      executor->TakeSpentAssignments(chunk);
      chunk.resize(n);
      for (size_t i = 0; i < n; ++i) {
        chunk[i].set_job_id(0);
        chunk[i].set_index(static_cast<uint32_t>(submitted + i));
        chunk[i].set_attempt(1);
        chunk[i].mutable_task()->CopyFrom(tasks[submitted + i]);
      }
      executor->SubmitBatch(std::move(chunk));
      submitted += n;
      // An interrupt that came while the chunk was on its way missed it.
      if (interrupted) executor->CancelJob(0);
    }
  };

  submit_more();
  while (received < tasks.size()) {
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

absl::Status RunLocal(const std::vector<v1::Task>& tasks,
                      const LocalPoolOptions& options,
                      const std::function<void(v1::TaskResult&&)>& on_result) {
  return RunLocalBatches(tasks, options,
                         [&on_result](std::vector<v1::TaskResult>& batch) {
                           for (v1::TaskResult& result : batch) {
                             on_result(std::move(result));
                           }
                         });
}

}  // namespace qfarm::client
