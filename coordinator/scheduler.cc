#include "coordinator/scheduler.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "common/task_spec.h"

namespace qfarm::coordinator {
namespace {

void AddOnce(std::vector<JobId>& jobs, JobId job) {
  if (std::find(jobs.begin(), jobs.end(), job) == jobs.end()) {
    jobs.push_back(job);
  }
}

}  // namespace

// What the scheduler knows of one task besides its spec. Kept small: a queue
// of a million tasks holds a million of these.
struct Scheduler::TaskEntry {
  int64_t queued_us = 0;
  // Of the latest attempt; 0 before the first.
  int64_t dispatched_us = 0;
  // Runs the current attempt while RUNNING; 0 otherwise.
  WorkerKey worker = 0;
  // Attempts dispatched so far: the running one while RUNNING.
  uint32_t attempt = 0;
  v1::TaskState state = v1::TASK_STATE_QUEUED;
};

struct Scheduler::Job {
  JobId id = 0;
  int64_t created_us = 0;
  // When the last task got its final result; 0 before.
  int64_t finished_us = 0;
  // CancelJob() cancelled at least one task.
  bool cancelled = false;
  // By index. A task's spec is released once it has its final result.
  std::vector<v1::Task> tasks;
  std::vector<TaskEntry> entries;
  // Final results in recording order; one per index. A deque, so growing it
  // never copies what is already there.
  std::deque<v1::TaskResult> results;
  uint32_t queued = 0;
  uint32_t running = 0;
  uint32_t ok = 0;
  uint32_t failed = 0;
  uint32_t timed_out = 0;
  uint32_t cancelled_tasks = 0;

  bool done() const { return results.size() == entries.size(); }

  // Records the final result of a queued or running task and updates the
  // counters. `result.state()` must be final.
  void Finish(uint32_t index, v1::TaskResult result, int64_t now_us);
};

void Scheduler::Job::Finish(uint32_t index, v1::TaskResult result,
                            int64_t now_us) {
  TaskEntry& entry = entries[index];
  if (entry.state == v1::TASK_STATE_QUEUED) {
    --queued;
  } else {
    QFARM_CHECK(entry.state == v1::TASK_STATE_RUNNING)
        << "job " << id << " task " << index << " is already final";
    --running;
  }
  switch (result.state()) {
    case v1::TASK_STATE_OK:
      ++ok;
      break;
    case v1::TASK_STATE_FAILED:
      ++failed;
      break;
    case v1::TASK_STATE_TIMED_OUT:
      ++timed_out;
      break;
    case v1::TASK_STATE_CANCELLED:
      ++cancelled_tasks;
      break;
    default:
      QFARM_CHECK(false) << "state " << result.state() << " is not final";
  }
  entry.state = result.state();
  entry.worker = 0;
  result.set_job_id(id);
  result.set_index(index);
  result.set_queued_us(entry.queued_us);
  result.set_dispatched_us(entry.dispatched_us);
  results.push_back(std::move(result));
  tasks[index] = v1::Task();  // Frees the text; the task never runs again.
  if (done()) finished_us = now_us;
}

struct Scheduler::Worker {
  WorkerKey key = 0;
  WorkerDesc desc;
  int64_t connected_us = 0;
  // Tasks it may still be sent.
  uint64_t credits = 0;
  // Results accepted from it.
  uint64_t completed = 0;
  // Tasks whose current attempt runs on it.
  absl::flat_hash_set<TaskRef> running;
};

Scheduler::Scheduler(Clock* clock, SchedulerOptions options)
    : clock_(clock), options_(std::move(options)) {
  QFARM_CHECK(clock_ != nullptr);
  QFARM_CHECK(options_.max_batch > 0) << "max_batch must be positive";
  QFARM_CHECK(options_.default_max_attempts > 0)
      << "default_max_attempts must be positive";
}

Scheduler::~Scheduler() = default;

uint32_t Scheduler::MaxAttempts(const v1::Task& task) const {
  return task.max_attempts() > 0 ? task.max_attempts()
                                 : options_.default_max_attempts;
}

absl::StatusOr<JobId> Scheduler::SubmitJob(std::vector<v1::Task> tasks) {
  if (tasks.empty()) return absl::InvalidArgumentError("job has no tasks");
  const size_t n = tasks.size();
  if (n > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("job of ", n, " tasks is over the maximum of ",
                     std::numeric_limits<uint32_t>::max()));
  }
  // Checked and built without the lock: only the queue needs it.
  for (size_t i = 0; i < n; ++i) {
    absl::Status valid = ValidateTask(tasks[i], options_.limits);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("task ", i, ": ", valid.message()));
    }
  }
  const int64_t now = clock_->NowMicros();
  auto job = std::make_unique<Job>();
  job->created_us = now;
  job->tasks = std::move(tasks);
  job->entries.resize(n, TaskEntry{.queued_us = now});
  job->queued = static_cast<uint32_t>(n);

  absl::MutexLock lock(&mu_);
  if (n > options_.max_queued) {
    return absl::ResourceExhaustedError(
        absl::StrCat("job of ", n, " tasks is over the queue limit of ",
                     options_.max_queued, " tasks"));
  }
  if (queued_ + n > options_.max_queued) {
    return absl::ResourceExhaustedError(
        absl::StrCat("queue full: ", queued_, " of ", options_.max_queued,
                     " tasks queued, job of ", n, " does not fit"));
  }
  const JobId id = next_job_id_++;
  job->id = id;
  for (uint32_t i = 0; i < n; ++i) queue_.push_back(TaskRef{id, i});
  queued_ += n;
  jobs_.emplace(id, std::move(job));
  return id;
}

WorkerKey Scheduler::AddWorker(WorkerDesc desc) {
  const int64_t now = clock_->NowMicros();
  auto worker = std::make_unique<Worker>();
  worker->desc = std::move(desc);
  worker->connected_us = now;
  absl::MutexLock lock(&mu_);
  const WorkerKey key = next_worker_key_++;
  worker->key = key;
  workers_.emplace(key, std::move(worker));
  return key;
}

void Scheduler::AddCredits(WorkerKey worker, uint32_t credits) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  it->second->credits += credits;
}

std::vector<JobId> Scheduler::RemoveWorker(WorkerKey key) {
  const int64_t now = clock_->NowMicros();
  std::vector<JobId> changed;
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(key);
  if (it == workers_.end()) return changed;
  std::unique_ptr<Worker> worker = std::move(it->second);
  workers_.erase(it);

  // Back to the front in their original order: oldest job, lowest index.
  std::vector<TaskRef> refs(worker->running.begin(), worker->running.end());
  std::sort(refs.begin(), refs.end(), [](const TaskRef& a, const TaskRef& b) {
    return a.job != b.job ? a.job < b.job : a.index < b.index;
  });
  for (auto ref = refs.rbegin(); ref != refs.rend(); ++ref) {
    Job& job = *jobs_.at(ref->job);
    TaskEntry& entry = job.entries[ref->index];
    const uint32_t max_attempts = MaxAttempts(job.tasks[ref->index]);
    if (entry.attempt >= max_attempts) {
      v1::TaskResult result;
      result.set_attempt(entry.attempt);
      result.set_state(v1::TASK_STATE_FAILED);
      result.set_error(absl::StrCat("worker ", worker->desc.worker_id,
                                    " lost while running the task (attempt ",
                                    entry.attempt, " of ", max_attempts, ")"));
      result.set_worker(worker->desc.worker_id);
      result.set_finished_us(now);
      job.Finish(ref->index, std::move(result), now);
      AddOnce(changed, job.id);
    } else {
      entry.state = v1::TASK_STATE_QUEUED;
      entry.worker = 0;
      --job.running;
      ++job.queued;
      ++queued_;
      queue_.push_front(*ref);
    }
  }
  std::sort(changed.begin(), changed.end());
  return changed;
}

std::pair<Scheduler::Job*, uint32_t> Scheduler::PopQueued(Job*& cache) {
  while (true) {
    QFARM_CHECK(!queue_.empty()) << "queue holds no live task";
    const TaskRef ref = queue_.front();
    queue_.pop_front();
    if (cache == nullptr || cache->id != ref.job) {
      auto it = jobs_.find(ref.job);
      QFARM_CHECK(it != jobs_.end()) << "queued task of unknown job";
      cache = it->second.get();
    }
    if (cache->entries[ref.index].state == v1::TASK_STATE_QUEUED) {
      return {cache, ref.index};
    }
    --stale_;
  }
}

void Scheduler::MaybeCompactQueue() {
  if (stale_ < 1024 || stale_ < queued_) return;
  std::deque<TaskRef> live;
  Job* job = nullptr;
  for (const TaskRef& ref : queue_) {
    if (job == nullptr || job->id != ref.job) job = jobs_.at(ref.job).get();
    if (job->entries[ref.index].state == v1::TASK_STATE_QUEUED) {
      live.push_back(ref);
    }
  }
  queue_.swap(live);
  stale_ = 0;
}

std::vector<Dispatch> Scheduler::TakeDispatches() {
  const int64_t now = clock_->NowMicros();
  std::vector<Dispatch> out;
  absl::MutexLock lock(&mu_);
  if (queued_ == 0) return out;

  // Workers with credits, in key order from where the last call started
  // plus one, so no worker is always served first.
  struct Ready {
    Worker* worker;
    // Index in `out` of its latest Dispatch, or kNone.
    size_t open;
  };
  constexpr size_t kNone = static_cast<size_t>(-1);
  std::vector<Ready> ready;
  const auto start = workers_.lower_bound(next_first_worker_);
  for (auto it = start; it != workers_.end(); ++it) {
    if (it->second->credits > 0) ready.push_back({it->second.get(), kNone});
  }
  for (auto it = workers_.begin(); it != start; ++it) {
    if (it->second->credits > 0) ready.push_back({it->second.get(), kNone});
  }
  if (ready.empty()) return out;
  next_first_worker_ = ready.front().worker->key + 1;

  // Rounds: each worker takes a fair share of what is left, at most a batch,
  // at most its credits, until the queue or the credits run out.
  Job* cache = nullptr;
  while (queued_ > 0 && !ready.empty()) {
    const size_t share = std::clamp<size_t>(
        (queued_ + ready.size() - 1) / ready.size(), 1, options_.max_batch);
    for (Ready& r : ready) {
      if (queued_ == 0) break;
      Worker& worker = *r.worker;
      size_t take = std::min<uint64_t>(share, worker.credits);
      take = std::min(take, queued_);
      worker.credits -= take;
      for (size_t k = 0; k < take; ++k) {
        if (r.open == kNone ||
            out[r.open].assignments.size() >= options_.max_batch) {
          r.open = out.size();
          Dispatch& dispatch = out.emplace_back();
          dispatch.worker = worker.key;
          dispatch.assignments.reserve(std::min<uint64_t>(
              {options_.max_batch, queued_, worker.credits + take - k}));
        }
        auto [job, index] = PopQueued(cache);
        TaskEntry& entry = job->entries[index];
        entry.state = v1::TASK_STATE_RUNNING;
        ++entry.attempt;
        entry.dispatched_us = now;
        entry.worker = worker.key;
        --job->queued;
        ++job->running;
        --queued_;
        worker.running.insert(TaskRef{job->id, index});
        v1::Assignment& assignment = out[r.open].assignments.emplace_back();
        assignment.set_job_id(job->id);
        assignment.set_index(index);
        assignment.set_attempt(entry.attempt);
        *assignment.mutable_task() = job->tasks[index];
      }
    }
    std::erase_if(ready, [](const Ready& r) { return r.worker->credits == 0; });
  }
  return out;
}

std::vector<JobId> Scheduler::RecordResults(
    WorkerKey key, std::vector<v1::TaskResult> results) {
  const int64_t now = clock_->NowMicros();
  std::vector<JobId> changed;
  absl::MutexLock lock(&mu_);
  auto worker_it = workers_.find(key);
  if (worker_it == workers_.end()) return changed;
  Worker& worker = *worker_it->second;
  Job* job = nullptr;
  for (v1::TaskResult& result : results) {
    if (job == nullptr || job->id != result.job_id()) {
      auto it = jobs_.find(result.job_id());
      if (it == jobs_.end()) continue;
      job = it->second.get();
    }
    if (result.index() >= job->entries.size()) continue;
    const TaskEntry& entry = job->entries[result.index()];
    if (entry.state != v1::TASK_STATE_RUNNING || entry.worker != key ||
        entry.attempt != result.attempt()) {
      continue;
    }
    worker.running.erase(TaskRef{job->id, result.index()});
    ++worker.completed;
    if (!IsFinal(result.state())) {
      const int state = result.state();
      result.set_state(v1::TASK_STATE_FAILED);
      result.clear_value();
      result.set_error(absl::StrCat(
          "worker ", worker.desc.worker_id, " sent invalid state ", state, " (",
          TaskStateName(static_cast<v1::TaskState>(state)),
          ") as the task's result"));
    }
    if (result.worker().empty()) result.set_worker(worker.desc.worker_id);
    const uint32_t index = result.index();
    job->Finish(index, std::move(result), now);
    AddOnce(changed, job->id);
  }
  return changed;
}

absl::StatusOr<ResultsPage> Scheduler::ReadResults(JobId id, size_t cursor,
                                                   size_t max_results) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  }
  const Job& job = *it->second;
  const size_t size = job.results.size();
  const size_t begin = std::min(cursor, size);
  const size_t end = begin + std::min(max_results, size - begin);
  ResultsPage page;
  page.results.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) page.results.push_back(job.results[i]);
  page.next_cursor = end;
  page.finished = job.done() && end == size;
  return page;
}

absl::StatusOr<v1::JobInfo> Scheduler::GetJob(JobId id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  }
  const Job& job = *it->second;
  v1::JobInfo info;
  info.set_job_id(job.id);
  if (!job.done()) {
    info.set_state(v1::JOB_STATE_RUNNING);
  } else if (job.cancelled) {
    info.set_state(v1::JOB_STATE_CANCELLED);
  } else if (job.ok == job.entries.size()) {
    info.set_state(v1::JOB_STATE_DONE);
  } else {
    info.set_state(v1::JOB_STATE_FAILED);
  }
  info.set_total(static_cast<uint32_t>(job.entries.size()));
  info.set_queued(job.queued);
  info.set_running(job.running);
  info.set_ok(job.ok);
  info.set_failed(job.failed);
  info.set_timed_out(job.timed_out);
  info.set_cancelled(job.cancelled_tasks);
  info.set_created_us(job.created_us);
  info.set_finished_us(job.finished_us);
  return info;
}

absl::StatusOr<CancelOutcome> Scheduler::CancelJob(JobId id) {
  const int64_t now = clock_->NowMicros();
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  }
  Job& job = *it->second;
  CancelOutcome outcome;
  if (job.done()) return outcome;
  for (uint32_t index = 0; index < job.entries.size(); ++index) {
    const TaskEntry& entry = job.entries[index];
    v1::TaskResult result;
    result.set_state(v1::TASK_STATE_CANCELLED);
    result.set_attempt(entry.attempt);
    result.set_finished_us(now);
    if (entry.state == v1::TASK_STATE_QUEUED) {
      // Its queue entry turns stale and is skipped or compacted away.
      --queued_;
      ++stale_;
      result.set_error("job cancelled");
    } else if (entry.state == v1::TASK_STATE_RUNNING) {
      Worker& worker = *workers_.at(entry.worker);
      worker.running.erase(TaskRef{id, index});
      outcome.workers_to_notify.push_back(worker.key);
      result.set_worker(worker.desc.worker_id);
      result.set_error(absl::StrCat("job cancelled while running on worker ",
                                    worker.desc.worker_id));
    } else {
      continue;
    }
    job.Finish(index, std::move(result), now);
    ++outcome.cancelled;
  }
  job.cancelled = true;
  std::sort(outcome.workers_to_notify.begin(), outcome.workers_to_notify.end());
  outcome.workers_to_notify.erase(std::unique(outcome.workers_to_notify.begin(),
                                              outcome.workers_to_notify.end()),
                                  outcome.workers_to_notify.end());
  MaybeCompactQueue();
  return outcome;
}

std::vector<v1::WorkerInfo> Scheduler::ListWorkers() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::WorkerInfo> out;
  out.reserve(workers_.size());
  for (const auto& [key, worker] : workers_) {
    v1::WorkerInfo& info = out.emplace_back();
    info.set_worker_id(worker->desc.worker_id);
    info.set_mode(worker->desc.mode);
    info.set_slots(worker->desc.slots);
    info.set_in_flight(static_cast<uint32_t>(worker->running.size()));
    info.set_completed(worker->completed);
    info.set_peer(worker->desc.peer);
    info.set_connected_us(worker->connected_us);
  }
  return out;
}

size_t Scheduler::queued() const {
  absl::MutexLock lock(&mu_);
  return queued_;
}

}  // namespace qfarm::coordinator
