// The scheduler's queue of tasks waiting for a worker, across jobs, one
// queue per kind (so no task waits behind tasks of a kind no worker takes):
// tasks never run, in FIFO order; tasks that lost their worker, each
// eligible once its retry backoff ends, ahead of them. It owns the counts of
// waiting tasks, in all and by kind: every change to them goes through its
// methods.
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
  // As queued() and ready(), of one kind.
  size_t queued(KindId kind) const {
    return kind < kinds_.size() ? kinds_[kind].queued : 0;
  }
  size_t ready(KindId kind) const {
    return kind < kinds_.size() ? kinds_[kind].ready : 0;
  }

  // Queues tasks [0, count) of a new job, each behind every other of its
  // kind, `kind_of(index)`.
  template <typename KindOf>
  void PushJob(JobId job, uint32_t count, KindOf kind_of) {
    for (uint32_t i = 0; i < count; ++i) {
      KindQueue& queue = Of(kind_of(i));
      queue.fresh.push_back(TaskRef{job, i});
      ++queue.queued;
      ++queue.ready;
    }
    queued_ += count;
    ready_ += count;
  }
  // As PushJob() above, for a job whose tasks are all of `kind`.
  void PushJob(JobId job, uint32_t count, KindId kind) {
    KindQueue& queue = Of(kind);
    for (uint32_t i = 0; i < count; ++i) queue.fresh.push_back(TaskRef{job, i});
    queue.queued += count;
    queue.ready += count;
    queued_ += count;
    ready_ += count;
  }
  // Queues one task behind every other of its kind (a restored one).
  void PushBack(TaskRef ref, KindId kind) {
    KindQueue& queue = Of(kind);
    queue.fresh.push_back(ref);
    ++queue.queued;
    ++queue.ready;
    ++queued_;
    ++ready_;
  }
  // Queues a task that lost its worker, eligible from `not_before_us` on,
  // ahead of tasks never run. Returns whether it waits (a backoff in the
  // future of `now_us`).
  bool PushRetry(TaskRef ref, KindId kind, int64_t now_us,
                 int64_t not_before_us) {
    ++queued_;
    ++Of(kind).queued;
    if (not_before_us <= now_us) {
      MakeEligible(ref, kind);
      return false;
    }
    delayed_.push_back(
        {.not_before_us = not_before_us, .ref = ref, .kind = kind});
    std::push_heap(delayed_.begin(), delayed_.end(), Later());
    return true;
  }

  // A waiting task of `kind` was cancelled; `delayed` as PushRetry()
  // returned (false for one that became eligible since). Its entry turns
  // stale.
  void Drop(KindId kind, bool delayed) {
    KindQueue& queue = kinds_[kind];
    --queued_;
    --queue.queued;
    // A delayed entry is dropped when it comes due.
    if (!delayed) {
      --ready_;
      --queue.ready;
      ++queue.stale;
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
      const Delayed due = delayed_.back();
      delayed_.pop_back();
      if (!undelay(due.ref)) continue;
      MakeEligible(due.ref, due.kind);
    }
  }

  // Takes the next live eligible task of `kind`: retried ones first, then
  // the rest in FIFO order. `live(ref)` says whether an entry's task is
  // still QUEUED; the last entry it is asked about is the one returned.
  // There must be one (ready(kind) > 0).
  template <typename Live>
  TaskRef Pop(KindId kind, Live live) {
    KindQueue& queue = kinds_[kind];
    QFARM_CHECK(queue.ready > 0) << "no eligible task of kind " << kind;
    while (true) {
      const bool retried = !queue.retry.empty();
      const TaskRef ref =
          retried ? queue.retry.front().ref : queue.fresh.front();
      if (retried) {
        queue.retry.pop_front();
      } else {
        queue.fresh.pop_front();
      }
      if (live(ref)) {
        Took(queue);
        return ref;
      }
      --queue.stale;
    }
  }

  // Takes the next live eligible task of any of `kinds`: retried ones
  // first, in the order they became eligible, then the rest in FIFO order
  // (by job, then index). As Pop(kind, live) otherwise; there must be one.
  template <typename Live>
  TaskRef Pop(const std::vector<KindId>& kinds, Live live) {
    KindQueue* best = nullptr;
    KindId best_kind = kNoKind;
    bool best_retried = false;
    for (KindId kind : kinds) {
      if (ready(kind) == 0) continue;
      KindQueue& queue = kinds_[kind];
      SkipStale(queue, live);
      const bool retried = !queue.retry.empty();
      bool better = true;
      if (best != nullptr && retried != best_retried) {
        better = retried;
      } else if (best != nullptr && retried) {
        better = queue.retry.front().seq < best->retry.front().seq;
      } else if (best != nullptr) {
        better = Before(queue.fresh.front(), best->fresh.front());
      }
      if (!better) continue;
      best = &queue;
      best_kind = kind;
      best_retried = retried;
    }
    QFARM_CHECK(best != nullptr) << "no eligible task of the kinds asked";
    return Pop(best_kind, live);
  }

  // Drops stale entries of a kind once they outnumber its live ones.
  template <typename Live>
  void MaybeCompact(Live live) {
    for (KindQueue& queue : kinds_) {
      if (queue.stale < 1024 || queue.stale < queue.ready) continue;
      std::erase_if(queue.retry, [&](const Retry& r) { return !live(r.ref); });
      std::erase_if(queue.fresh, [&](const TaskRef& r) { return !live(r); });
      queue.stale = 0;
    }
  }

  // Whether some kind with waiting tasks satisfies `pred(kind)`.
  template <typename Pred>
  bool AnyQueued(Pred pred) const {
    for (KindId kind = 0; kind < kinds_.size(); ++kind) {
      if (kinds_[kind].queued > 0 && pred(kind)) return true;
    }
    return false;
  }

  // A kind that has no waiting task is forgotten (its id may come back for
  // another kind): its stale entries go.
  void Forget(KindId kind) {
    if (kind >= kinds_.size()) return;
    QFARM_CHECK(kinds_[kind].queued == 0)
        << "kind " << kind << " forgotten with tasks waiting";
    kinds_[kind] = KindQueue();
  }

 private:
  // A retried task, eligible in the order of `seq`.
  struct Retry {
    TaskRef ref;
    uint64_t seq = 0;
  };
  // A task waiting out its retry backoff.
  struct Delayed {
    int64_t not_before_us = 0;
    TaskRef ref;
    KindId kind = 0;
  };
  // Orders the min-heap delayed_: earliest first, then job, then index.
  struct Later {
    bool operator()(const Delayed& a, const Delayed& b) const {
      return std::tie(a.not_before_us, a.ref.job, a.ref.index) >
             std::tie(b.not_before_us, b.ref.job, b.ref.index);
    }
  };
  // The waiting tasks of one kind. Eligible: retried ones in the order
  // their backoff ended, then `fresh`, oldest first; both also hold stale
  // entries.
  struct KindQueue {
    std::deque<Retry> retry;
    std::deque<TaskRef> fresh;
    // Live tasks: eligible or delayed, and eligible.
    size_t queued = 0;
    size_t ready = 0;
    // Stale entries in `retry` and `fresh`.
    size_t stale = 0;
  };

  // Never-run tasks queue in (job, index) order.
  static bool Before(const TaskRef& a, const TaskRef& b) {
    return a.job != b.job ? a.job < b.job : a.index < b.index;
  }

  KindQueue& Of(KindId kind) {
    if (kind >= kinds_.size()) kinds_.resize(kind + 1);
    return kinds_[kind];
  }
  void MakeEligible(TaskRef ref, KindId kind) {
    KindQueue& queue = Of(kind);
    queue.retry.push_back({.ref = ref, .seq = next_retry_seq_++});
    ++queue.ready;
    ++ready_;
  }
  void Took(KindQueue& queue) {
    --queue.queued;
    --queue.ready;
    --queued_;
    --ready_;
  }
  // Pops stale entries off the fronts of `queue`, which has a live one.
  template <typename Live>
  void SkipStale(KindQueue& queue, Live& live) {
    while (!queue.retry.empty() && !live(queue.retry.front().ref)) {
      queue.retry.pop_front();
      --queue.stale;
    }
    while (queue.retry.empty() && !live(queue.fresh.front())) {
      queue.fresh.pop_front();
      --queue.stale;
    }
  }

  // By KindId.
  std::vector<KindQueue> kinds_;
  // Waiting out a backoff: a min-heap by Later. May hold entries of tasks
  // cancelled meanwhile, dropped when they come due.
  std::vector<Delayed> delayed_;
  uint64_t next_retry_seq_ = 0;
  size_t queued_ = 0;
  size_t ready_ = 0;
};

}  // namespace qfarm::coordinator
