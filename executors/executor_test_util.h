// Helpers for executor tests: a monotonic Clock, a ResultSink that records
// results and task starts, and builders of assignments.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "executors/async_executor.h"
#include "executors/auto_executor.h"
#include "executors/executor.h"
#include "executors/thread_executor.h"
#include "gtest/gtest.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::executors {

// Far longer than any test may take: such a sleep ends only by cancellation.
inline constexpr int64_t kHourMs = 3'600'000;
// Only a hang reaches it; it never paces a passing test.
inline constexpr absl::Duration kHangDeadline = absl::Seconds(60);

using Key = std::pair<uint64_t, uint32_t>;  // (job_id, index)

inline Key KeyOf(const v1::TaskResult& result) {
  return {result.job_id(), result.index()};
}

// Monotonic, so intervals measured on one thread never overlap because the
// wall clock stepped.
class SteadyClock : public Clock {
 public:
  absl::Time Now() const override {
    return absl::UnixEpoch() +
           absl::FromChrono(
               std::chrono::steady_clock::now().time_since_epoch());
  }
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu->AwaitWithTimeout(condition, deadline - Now());
  }
};

// Collects results, and task starts through the executors' test hook, so a
// test can wait for either and count what ran at once. Thread-safe.
class Recorder : public ResultSink {
 public:
  std::function<void(const v1::Assignment&)> StartHook() {
    return [this](const v1::Assignment& assignment) { OnStart(assignment); };
  }

  void OnResult(v1::TaskResult result) override {
    absl::MutexLock lock(&mu_);
    if (started_.contains(KeyOf(result))) --running_;
    threads_by_label_[result.executor()].insert(std::this_thread::get_id());
    result_threads_.insert(std::this_thread::get_id());
    results_.push_back(std::move(result));
  }

  // Waits until `n` results arrived; false if that took kHangDeadline.
  bool WaitForResults(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return results_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kHangDeadline);
  }

  // Waits until `n` tasks started; false if that took kHangDeadline.
  bool WaitForStarts(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return started_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kHangDeadline);
  }

  std::vector<v1::TaskResult> results() const {
    absl::MutexLock lock(&mu_);
    return results_;
  }
  // By (job, index); fails the test on a duplicate.
  std::map<Key, v1::TaskResult> results_by_key() const {
    std::map<Key, v1::TaskResult> by_key;
    for (v1::TaskResult& result : results()) {
      EXPECT_TRUE(by_key.emplace(KeyOf(result), result).second)
          << "duplicate result for job " << result.job_id() << " index "
          << result.index();
    }
    return by_key;
  }
  size_t num_results() const {
    absl::MutexLock lock(&mu_);
    return results_.size();
  }
  bool started(const Key& key) const {
    absl::MutexLock lock(&mu_);
    return started_.contains(key);
  }
  size_t num_started() const {
    absl::MutexLock lock(&mu_);
    return started_.size();
  }
  // Most tasks between their start and their result at any moment.
  int max_running() const {
    absl::MutexLock lock(&mu_);
    return max_running_;
  }
  // Threads that delivered results with each executor label.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::thread::id>>
  threads_by_label() const {
    absl::MutexLock lock(&mu_);
    return threads_by_label_;
  }
  absl::flat_hash_set<std::thread::id> result_threads() const {
    absl::MutexLock lock(&mu_);
    return result_threads_;
  }

 private:
  void OnStart(const v1::Assignment& assignment) {
    absl::MutexLock lock(&mu_);
    EXPECT_TRUE(
        started_.insert({assignment.job_id(), assignment.index()}).second)
        << "started twice: job " << assignment.job_id() << " index "
        << assignment.index();
    max_running_ = std::max(max_running_, ++running_);
  }

  mutable absl::Mutex mu_;
  std::vector<v1::TaskResult> results_ ABSL_GUARDED_BY(mu_);
  std::set<Key> started_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int max_running_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::thread::id>>
      threads_by_label_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::thread::id> result_threads_ ABSL_GUARDED_BY(mu_);
};

// The most [started_us, finished_us] intervals of started tasks that share
// an instant; an interval ending when another starts does not overlap it.
inline int MaxOverlap(const std::vector<v1::TaskResult>& results) {
  std::vector<std::pair<int64_t, int>> events;  // (time, +1 start / -1 end)
  for (const v1::TaskResult& result : results) {
    if (result.started_us() == 0) continue;
    events.push_back({result.started_us(), +1});
    events.push_back({result.finished_us(), -1});
  }
  std::sort(events.begin(), events.end());  // Ends sort before starts.
  int now = 0;
  int most = 0;
  for (const auto& [time, delta] : events) most = std::max(most, now += delta);
  return most;
}

inline v1::Assignment Assign(uint64_t job, uint32_t index, std::string kind,
                             int64_t arg, int64_t timeout_ms = 0) {
  v1::Assignment assignment;
  assignment.set_job_id(job);
  assignment.set_index(index);
  assignment.set_attempt(1);
  assignment.mutable_task()->set_kind(std::move(kind));
  assignment.mutable_task()->set_arg(arg);
  assignment.mutable_task()->set_timeout_ms(timeout_ms);
  return assignment;
}

inline v1::Assignment Sleep(uint64_t job, uint32_t index, int64_t ms,
                            int64_t timeout_ms = 0) {
  return Assign(job, index, "sleep", ms, timeout_ms);
}

inline v1::Assignment Echo(uint64_t job, uint32_t index, std::string text) {
  v1::Assignment assignment = Assign(job, index, "echo", 0);
  assignment.mutable_task()->set_text(std::move(text));
  return assignment;
}

inline v1::Assignment Cpu(uint64_t job, uint32_t index, int64_t units,
                          int64_t timeout_ms = 0) {
  return Assign(job, index, "cpu", units, timeout_ms);
}

inline v1::Assignment Http(uint64_t job, uint32_t index, std::string url,
                           int64_t timeout_ms = 0) {
  v1::Assignment assignment = Assign(job, index, "http", 0, timeout_ms);
  assignment.mutable_task()->set_text(std::move(url));
  return assignment;
}

// The executor for options.mode, calling `on_start` as each task starts.
inline std::unique_ptr<Executor> MakeWithStartHook(
    const ExecutorOptions& options,
    std::function<void(const v1::Assignment&)> on_start) {
  switch (options.mode) {
    case Mode::kAsync:
      return std::make_unique<AsyncExecutor>(options, std::move(on_start));
    case Mode::kAuto:
      return std::make_unique<AutoExecutor>(options, std::move(on_start));
    default:
      return std::make_unique<ThreadExecutor>(options, std::move(on_start));
  }
}

}  // namespace qfarm::executors
