// The scheduler's queue of tasks waiting for a worker, across jobs: tasks
// never run, in FIFO order; tasks that lost their worker, each eligible once
// its retry backoff ends, ahead of them. It owns the counts of waiting
// tasks: every change to them goes through its methods.
//
// A task leaves the queue either by Pop() or, cancelled while waiting, by
// Drop(): its entry stays behind "stale" and is skipped when met (or
// compacted away), so the queue asks the caller whether an entry is still
// live (its task still QUEUED).
//
// Part of the Scheduler (coordinator/scheduler.h), under its mutex:
// thread-compatible.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <tuple>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "coordinator/ids.h"

namespace qfarm::coordinator {

// One task of one job.
struct TaskRef {
  JobId job = 0;
  uint32_t index = 0;

  friend bool operator==(const TaskRef&, const TaskRef&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const TaskRef& ref) {
    return H::combine(std::move(h), ref.job, ref.index);
  }
};

class TaskQueue {
 public:
  // Live waiting tasks: eligible or delayed.
  size_t queued() const { return queued_; }
  // Live tasks eligible now (not waiting out a backoff).
  size_t ready() const { return ready_; }

  // Queues tasks [0, count) of a new job, behind every other.
  void PushJob(JobId job, uint32_t count) {
    for (uint32_t i = 0; i < count; ++i) queue_.push_back(TaskRef{job, i});
    queued_ += count;
    ready_ += count;
  }
  // Queues one task behind every other (a restored one).
  void PushBack(TaskRef ref) {
    queue_.push_back(ref);
    ++queued_;
    ++ready_;
  }
  // Queues a task that lost its worker, eligible from `not_before_us` on,
  // ahead of tasks never run. Returns whether it waits (a backoff in the
  // future of `now_us`).
  bool PushRetry(TaskRef ref, int64_t now_us, int64_t not_before_us) {
    ++queued_;
    if (not_before_us <= now_us) {
      retry_.push_back(ref);
      ++ready_;
      return false;
    }
    delayed_.push_back({.not_before_us = not_before_us, .ref = ref});
    std::push_heap(delayed_.begin(), delayed_.end(), Later());
    return true;
  }

  // A waiting task was cancelled; `delayed` as PushRetry() returned (false
  // for one that became eligible since). Its entry turns stale.
  void Drop(bool delayed) {
    --queued_;
    // A delayed entry is dropped when it comes due.
    if (!delayed) {
      --ready_;
      ++stale_;
    }
  }

  // When the first delayed task becomes eligible, in Unix microseconds;
  // INT64_MAX when none waits.
  int64_t next_due_us() const {
    return delayed_.empty() ? INT64_MAX : delayed_.front().not_before_us;
  }

  // Makes delayed tasks due by `now_us` eligible, in the order they came
  // due. `undelay(ref)` says whether the task still waits (it may have been
  // cancelled since) and marks it eligible.
  template <typename Undelay>
  void PromoteDue(int64_t now_us, Undelay undelay) {
    while (!delayed_.empty() && delayed_.front().not_before_us <= now_us) {
      std::pop_heap(delayed_.begin(), delayed_.end(), Later());
      const TaskRef ref = delayed_.back().ref;
      delayed_.pop_back();
      if (!undelay(ref)) continue;
      retry_.push_back(ref);
      ++ready_;
    }
  }

  // Takes the next live eligible task: retried ones first, then the rest
  // in FIFO order. `live(ref)` says whether an entry's task is still
  // QUEUED. There must be one (ready() > 0).
  template <typename Live>
  TaskRef Pop(Live live) {
    while (true) {
      std::deque<TaskRef>& from = retry_.empty() ? queue_ : retry_;
      QFARM_CHECK(!from.empty()) << "queue holds no live task";
      const TaskRef ref = from.front();
      from.pop_front();
      if (live(ref)) {
        --queued_;
        --ready_;
        return ref;
      }
      --stale_;
    }
  }

  // Drops stale entries once they outnumber the live ones.
  template <typename Live>
  void MaybeCompact(Live live) {
    if (stale_ < 1024 || stale_ < ready_) return;
    for (std::deque<TaskRef>* queue : {&retry_, &queue_}) {
      std::deque<TaskRef> kept;
      for (const TaskRef& ref : *queue) {
        if (live(ref)) kept.push_back(ref);
      }
      queue->swap(kept);
    }
    stale_ = 0;
  }

 private:
  // A task waiting out its retry backoff.
  struct Delayed {
    int64_t not_before_us = 0;
    TaskRef ref;
  };
  // Orders the min-heap delayed_: earliest first, then job, then index.
  struct Later {
    bool operator()(const Delayed& a, const Delayed& b) const {
      return std::tie(a.not_before_us, a.ref.job, a.ref.index) >
             std::tie(b.not_before_us, b.ref.job, b.ref.index);
    }
  };

  // Eligible: retried ones in the order their backoff ended, then queue_,
  // oldest first. Both also hold stale entries.
  std::deque<TaskRef> retry_;
  std::deque<TaskRef> queue_;
  // Waiting out a backoff: a min-heap by Later. May hold entries of tasks
  // cancelled meanwhile, dropped when they come due.
  std::vector<Delayed> delayed_;
  size_t queued_ = 0;
  size_t ready_ = 0;
  // Stale entries in retry_ and queue_.
  size_t stale_ = 0;
};

}  // namespace qfarm::coordinator
