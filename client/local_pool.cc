#include "client/local_pool.h"

#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace qfarm::client {
namespace {

// Hands results from executor threads to the calling thread.
class QueueSink : public worker::ResultSink {
 public:
  void OnResult(v1::TaskResult result) override {
    absl::MutexLock lock(&mu_);
    ready_.push_back(std::move(result));
  }

  // Blocks until at least one result is ready; returns all ready ones.
  std::vector<v1::TaskResult> Take() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::vector<v1::TaskResult>* v) { return !v->empty(); }, &ready_));
    std::vector<v1::TaskResult> out;
    out.swap(ready_);
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::TaskResult> ready_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status RunLocal(const std::vector<v1::Task>& tasks,
                      const LocalPoolOptions& options,
                      const std::function<void(v1::TaskResult&&)>& on_result) {
  QueueSink sink;
  std::unique_ptr<worker::Executor> executor =
      worker::MakeExecutor({.mode = options.mode,
                            .slots = options.slots,
                            .worker_name = "local",
                            .sink = &sink});
  ScopedInterruptHandler on_interrupt(options.interrupt,
                                      [&executor] { executor->CancelJob(0); });
  const int64_t queued_us = Clock::Real()->NowMicros();
  for (size_t i = 0; i < tasks.size(); ++i) {
    v1::Assignment assignment;
    assignment.set_index(static_cast<uint32_t>(i));
    assignment.set_attempt(1);
    *assignment.mutable_task() = tasks[i];
    executor->Submit(std::move(assignment));
  }
  size_t received = 0;
  while (received < tasks.size()) {
    for (v1::TaskResult& result : sink.Take()) {
      result.set_queued_us(queued_us);
      result.set_dispatched_us(queued_us);
      ++received;
      on_result(std::move(result));
    }
  }
  executor->Shutdown();
  return absl::OkStatus();
}

}  // namespace qfarm::client
