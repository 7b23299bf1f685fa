// The Scheduler's side that faces the workers: connections, credits and
// heartbeats, dispatch, and the results they send. The rest (jobs, results
// for readers, the journal) is in scheduler.cc.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/task_spec.h"
#include "common/task_table.h"
#include "coordinator/scheduler.h"

namespace qfarm::coordinator {
namespace {

std::string Times(uint32_t n) {
  return n == 1 ? "1 time" : absl::StrCat(n, " times");
}

}  // namespace

bool Scheduler::IsQueued(const TaskRef& ref, Job*& cache) {
  if (cache == nullptr || cache->id != ref.job) {
    cache = jobs_.Find(ref.job);
    // A cancelled job's tasks may stand in the queue until it is compacted,
    // after the job was released.
    if (cache == nullptr) return false;
  }
  // A stored job is finished.
  return !cache->stored &&
         cache->entries[ref.index].state == v1::TASK_STATE_QUEUED;
}

WorkerKey Scheduler::AddWorker(WorkerDesc desc) {
  const int64_t now = clock_->NowMicros();
  // The hello's order is the kind table of the tasks the worker is sent:
  // each name's first place there, found before the lock.
  std::vector<std::pair<std::string, uint32_t>> places;
  places.reserve(desc.kinds.size());
  for (size_t i = 0; i < desc.kinds.size(); ++i) {
    places.emplace_back(desc.kinds[i], static_cast<uint32_t>(i));
  }
  std::stable_sort(
      places.begin(), places.end(),
      [](const auto& a, const auto& b) { return a.first < b.first; });
  places.erase(std::unique(places.begin(), places.end(),
                           [](const auto& a, const auto& b) {
                             return a.first == b.first;
                           }),
               places.end());
  desc.kinds.clear();
  for (const auto& [name, place] : places) desc.kinds.push_back(name);
  absl::MutexLock lock(&mu_);
  std::vector<OfferedKind> kinds;
  kinds.reserve(places.size());
  for (const auto& [name, place] : places) {
    // Workers' kinds are always taken in.
    kinds.push_back({.id = *kinds_.Acquire(name, 1, /*for_tasks=*/false),
                     .hello_index = place});
  }
  return workers_.Add(std::move(desc), std::move(kinds), now);
}

void Scheduler::AddCredits(WorkerKey key, uint32_t credits) {
  const int64_t now = clock_->NowMicros();
  absl::MutexLock lock(&mu_);
  Worker* worker = workers_.Find(key);
  if (worker == nullptr) return;
  worker->credits += credits;
  worker->heard_us = now;
}

bool Scheduler::Heartbeat(WorkerKey key) {
  const int64_t now = clock_->NowMicros();
  absl::MutexLock lock(&mu_);
  Worker* worker = workers_.Find(key);
  if (worker == nullptr) return false;
  worker->heard_us = now;
  return true;
}

void Scheduler::RemoveWorkerLocked(WorkerKey key, const std::string& reason,
                                   int64_t now_us, Changes& changes) {
  std::unique_ptr<Worker> worker = workers_.Remove(key);
  if (worker == nullptr) return;
  // In their original order: oldest job, lowest index.
  std::vector<TaskRef> refs(worker->running.begin(), worker->running.end());
  std::sort(refs.begin(), refs.end(), [](const TaskRef& a, const TaskRef& b) {
    return a.job != b.job ? a.job < b.job : a.index < b.index;
  });
  for (const TaskRef& ref : refs) {
    Job& job = jobs_.Get(ref.job);
    const TaskEntry& entry = job.entries[ref.index];
    const uint32_t max_attempts = MaxAttempts(job.tasks[ref.index]);
    if (entry.attempt >= max_attempts) {
      auto result = std::make_unique<v1::TaskResult>();
      result->set_attempt(entry.attempt);
      result->set_state(v1::TASK_STATE_FAILED);
      result->set_error(absl::StrCat(
          "worker lost while running the task ", Times(entry.attempt),
          " (attempt ", entry.attempt, " of ", max_attempts,
          "); last worker: ", worker->desc.worker_id, " (", reason, ")"));
      result->set_worker(worker->desc.worker_id);
      result->set_finished_us(now_us);
      Finish(job, ref.index, std::move(result), now_us, changes);
      continue;
    }
    if (journal_ != nullptr) {
      // So a restart does not give the task a fresh set of attempts.
      v1::TaskResult& used = changes.attempts.emplace_back();
      used.set_job_id(ref.job);
      used.set_index(ref.index);
      used.set_attempt(entry.attempt);
    }
    const int64_t not_before_us =
        now_us + absl::ToInt64Microseconds(Backoff(entry.attempt));
    job.Requeue(ref.index,
                queue_.PushRetry(ref, entry.kind, now_us, not_before_us));
  }
  for (KindId kind : worker->kinds) ReleaseKind(kind);
}

std::vector<JobId> Scheduler::RemoveWorker(WorkerKey key) {
  const int64_t now = clock_->NowMicros();
  Changes changes;
  std::vector<JobId> changed;
  ResultJournal* journal;
  {
    absl::MutexLock lock(&mu_);
    if (workers_.Find(key) == nullptr) return changed;
    RemoveWorkerLocked(key, "connection ended", now, changes);
    changed = Commit(changes);
    journal = journal_;
  }
  SendToJournal(journal, std::move(changes));
  std::sort(changed.begin(), changed.end());
  return changed;
}

Expiry Scheduler::ExpireSilentWorkers() {
  Expiry expiry;
  if (options_.heartbeat_timeout == absl::InfiniteDuration()) return expiry;
  const int64_t now = clock_->NowMicros();
  const int64_t timeout_us =
      absl::ToInt64Microseconds(options_.heartbeat_timeout);
  Changes changes;
  ResultJournal* journal;
  {
    absl::MutexLock lock(&mu_);
    expiry.workers = workers_.Silent(now, timeout_us);
    for (WorkerKey key : expiry.workers) {
      const int64_t silent_us = now - workers_.Find(key)->heard_us;
      RemoveWorkerLocked(
          key,
          absl::StrCat("silent for ",
                       absl::FormatDuration(absl::Microseconds(silent_us))),
          now, changes);
    }
    expiry.jobs = Commit(changes);
    journal = journal_;
  }
  SendToJournal(journal, std::move(changes));
  std::sort(expiry.jobs.begin(), expiry.jobs.end());
  return expiry;
}

absl::Time Scheduler::NextWakeup() const {
  absl::MutexLock lock(&mu_);
  const int64_t due_us = queue_.next_due_us();
  if (due_us == INT64_MAX) return absl::InfiniteFuture();
  return absl::FromUnixMicros(due_us);
}

v1::Assignment& Scheduler::NewAssignment(
    google::protobuf::RepeatedPtrField<v1::Assignment>& to) {
  if (spare_assignments_.empty()) return *to.Add();
  v1::Assignment* spare = spare_assignments_.back().release();
  spare_assignments_.pop_back();
  to.AddAllocated(spare);
  return *spare;
}

void Scheduler::RecycleAssignments(
    google::protobuf::RepeatedPtrField<v1::Assignment>* sent) {
  // Enough for the dispatches in flight to all workers at high rates;
  // a spare holding a long text is not worth keeping.
  constexpr size_t kMaxSpares = 1 << 16;
  constexpr size_t kMaxSpareText = 256;
  std::vector<v1::Assignment*> taken(static_cast<size_t>(sent->size()));
  sent->ExtractSubrange(0, sent->size(), taken.data());
  std::vector<std::unique_ptr<v1::Assignment>> owned;
  owned.reserve(taken.size());
  for (v1::Assignment* a : taken) owned.emplace_back(a);
  {
    absl::MutexLock lock(&mu_);
    for (std::unique_ptr<v1::Assignment>& a : owned) {
      if (spare_assignments_.size() >= kMaxSpares) break;
      if (a->task().text().capacity() > kMaxSpareText) continue;
      spare_assignments_.push_back(std::move(a));
    }
  }
  // What was not kept is freed here, outside the lock.
}

void Scheduler::Assign(Worker& worker, size_t count, int64_t now_us,
                       std::vector<Dispatch>& out, size_t& open, Job*& cache) {
  constexpr size_t kNone = static_cast<size_t>(-1);
  auto live = [this, &cache](const TaskRef& ref) {
    mu_.AssertHeld();  // Called within this scope, for the analysis.
    return IsQueued(ref, cache);
  };
  // The worker's kinds with eligible tasks; mostly one.
  std::vector<KindId> kinds;
  for (KindId kind : worker.kinds) {
    if (queue_.ready(kind) > 0) kinds.push_back(kind);
  }
  // The worker's index of the last task's kind (the worker has kinds: it
  // has eligible tasks).
  KindId last_kind = worker.kinds.front();
  uint32_t hello_index = worker.hello_index.front();
  for (size_t k = 0; k < count; ++k) {
    if (open == kNone || static_cast<size_t>(out[open].assignments.size()) >=
                             options_.max_batch) {
      open = out.size();
      Dispatch& dispatch = out.emplace_back();
      dispatch.worker = worker.key;
      dispatch.assignments.Reserve(static_cast<int>(std::min<uint64_t>(
          {options_.max_batch, queue_.ready(), worker.credits + count - k})));
    }
    const TaskRef ref = kinds.size() == 1 ? queue_.Pop(kinds[0], live)
                                          : queue_.Pop(kinds, live);
    Job& job = *cache;  // Pop() asked live() about it last.
    job.Start(ref.index, worker.key, now_us);
    const TaskEntry& entry = job.entries[ref.index];
    if (entry.attempt > 1) ++stats_.retried;
    worker.running.insert(ref);
    v1::Assignment& assignment = NewAssignment(out[open].assignments);
    assignment.set_job_id(ref.job);
    assignment.set_index(ref.index);
    assignment.set_attempt(entry.attempt);
    if (entry.kind != last_kind) {
      last_kind = entry.kind;
      hello_index = worker.HelloIndex(entry.kind);
    }
    // Every field of v1::Task
    // (SchedulerTest.AssignmentsCarryEveryFieldOfTheTask).
    CopyTaskByKindIndex(job.tasks[ref.index], hello_index,
                        *assignment.mutable_task());
  }
}

std::vector<Dispatch> Scheduler::TakeDispatches() {
  const int64_t now = clock_->NowMicros();
  std::vector<Dispatch> out;
  absl::MutexLock lock(&mu_);
  queue_.PromoteDue(now, [this](const TaskRef& ref) {
    mu_.AssertHeld();  // Called within this scope, for the analysis.
    Job* job = jobs_.Find(ref.job);
    // Cancelled while it waited (and perhaps released since): nothing to
    // do.
    if (job == nullptr) return false;
    TaskEntry& entry = job->entries[ref.index];
    if (entry.state != v1::TASK_STATE_QUEUED || !entry.delayed) {
      return false;
    }
    entry.delayed = false;
    return true;
  });
  if (queue_.ready() == 0) return out;
  struct Turn {
    Worker* worker;
    // Index in `out` of its latest Dispatch, or kNone.
    size_t open;
  };
  constexpr size_t kNone = static_cast<size_t>(-1);
  std::vector<Turn> turns;
  for (Worker* worker : workers_.TakeTurns()) turns.push_back({worker, kNone});

  // Rounds: each worker takes a fair share of what is left, at most a batch,
  // at most its credits, until the queue or the credits run out.
  // Eligible tasks of the kinds a worker offers.
  auto ready_for = [this](const Worker& worker) {
    mu_.AssertHeld();  // Called within this scope, for the analysis.
    size_t ready = 0;
    for (KindId kind : worker.kinds) ready += queue_.ready(kind);
    return ready;
  };
  auto idle = [&ready_for](const Turn& t) {
    return t.worker->credits == 0 || ready_for(*t.worker) == 0;
  };
  std::erase_if(turns, idle);
  Job* cache = nullptr;
  while (queue_.ready() > 0 && !turns.empty()) {
    const size_t share =
        std::clamp<size_t>((queue_.ready() + turns.size() - 1) / turns.size(),
                           1, options_.max_batch);
    for (Turn& turn : turns) {
      if (queue_.ready() == 0) break;
      Worker& worker = *turn.worker;
      size_t take = std::min<uint64_t>(share, worker.credits);
      take = std::min(take, ready_for(worker));
      worker.credits -= take;
      Assign(worker, take, now, out, turn.open, cache);
    }
    std::erase_if(turns, idle);
  }
  return out;
}

std::vector<JobId> Scheduler::RecordResults(WorkerKey key,
                                            std::vector<v1::TaskResult> results,
                                            std::string* violation) {
  google::protobuf::RepeatedPtrField<v1::TaskResult> batch;
  batch.Reserve(static_cast<int>(results.size()));
  for (v1::TaskResult& result : results) batch.Add(std::move(result));
  return RecordResultBatch(key, &batch, violation);
}

bool Scheduler::Accepts(const Worker& worker, const v1::TaskResult& result,
                        Job*& job, std::string* violation) {
  auto never_given = [&] {
    if (violation != nullptr && violation->empty()) {
      *violation = absl::StrCat("result for job ", result.job_id(), " task ",
                                result.index(), " attempt ", result.attempt(),
                                ": that task was never given to this worker");
    }
    return false;
  };
  if (job == nullptr || job->id != result.job_id()) {
    job = jobs_.Find(result.job_id());
    if (job == nullptr) return never_given();
  }
  // A late result for a finished job whose entries left memory: dropped.
  if (job->stored) return false;
  if (result.index() >= job->entries.size()) return never_given();
  const TaskEntry& entry = job->entries[result.index()];
  // An attempt not yet made, or the current attempt running elsewhere, was
  // never this worker's; a late result of an earlier attempt (or after a
  // cancel) is dropped quietly.
  if (result.attempt() == 0 || result.attempt() > entry.attempt ||
      (entry.state == v1::TASK_STATE_RUNNING &&
       entry.attempt == result.attempt() && entry.worker != worker.key)) {
    return never_given();
  }
  return entry.state == v1::TASK_STATE_RUNNING && entry.worker == worker.key &&
         entry.attempt == result.attempt();
}

std::vector<JobId> Scheduler::RecordResultBatch(
    WorkerKey key, google::protobuf::RepeatedPtrField<v1::TaskResult>* batch,
    std::string* violation) {
  const int64_t now = clock_->NowMicros();
  // Owned from here on: recorded ones move into their job, the rest are
  // freed. (No copies, as `batch` is not on an arena.)
  std::vector<v1::TaskResult*> taken(static_cast<size_t>(batch->size()));
  batch->ExtractSubrange(0, batch->size(), taken.data());
  std::vector<std::unique_ptr<v1::TaskResult>> results;
  results.reserve(taken.size());
  for (v1::TaskResult* result : taken) results.emplace_back(result);
  Changes changes;
  std::vector<JobId> changed;
  ResultJournal* journal;
  {
    absl::MutexLock lock(&mu_);
    Worker* worker = workers_.Find(key);
    if (worker == nullptr) return changed;
    worker->heard_us = now;
    Job* job = nullptr;
    for (std::unique_ptr<v1::TaskResult>& owned : results) {
      v1::TaskResult& result = *owned;
      if (!Accepts(*worker, result, job, violation)) continue;
      worker->running.erase(TaskRef{job->id, result.index()});
      ++worker->completed;
      if (!IsFinal(result.state())) {
        const int state = result.state();
        result.set_state(v1::TASK_STATE_FAILED);
        result.clear_value();
        result.set_error(absl::StrCat(
            "worker ", worker->desc.worker_id, " sent invalid state ", state,
            " (", TaskStateName(static_cast<v1::TaskState>(state)),
            ") as the task's result"));
      }
      if (result.value().size() > options_.limits.max_value_bytes) {
        const size_t size = result.value().size();
        result.set_state(v1::TASK_STATE_FAILED);
        result.clear_value();
        result.set_error(absl::StrCat(
            "value of ", size, " bytes is over the result limit of ",
            options_.limits.max_value_bytes, " bytes"));
      }
      if (result.worker().empty()) result.set_worker(worker->desc.worker_id);
      const uint32_t index = result.index();
      Finish(*job, index, std::move(owned), now, changes);
    }
    changed = Commit(changes);
    journal = journal_;
  }
  SendToJournal(journal, std::move(changes));
  return changed;
}

}  // namespace qfarm::coordinator
