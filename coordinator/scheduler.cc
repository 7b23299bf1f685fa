#include "coordinator/scheduler.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/task_spec.h"

namespace qfarm::coordinator {
namespace {

void AddOnce(std::vector<JobId>& jobs, JobId job) {
  if (std::find(jobs.begin(), jobs.end(), job) == jobs.end()) {
    jobs.push_back(job);
  }
}

std::string Times(uint32_t n) {
  return n == 1 ? "1 time" : absl::StrCat(n, " times");
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
  // QUEUED and waiting out a retry backoff in delayed_, not in a queue.
  bool delayed = false;
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
  // Final results in recording order; one per index. Never changed once
  // recorded, and never moved: ViewResults() hands out pointers to them.
  std::deque<std::unique_ptr<v1::TaskResult>> results;
  uint32_t queued = 0;
  uint32_t running = 0;
  uint32_t ok = 0;
  uint32_t failed = 0;
  uint32_t timed_out = 0;
  uint32_t cancelled_tasks = 0;
  // Journal mode: for each ticket whose results are not readable yet, oldest
  // first, the ticket and the position in `results` of its first result.
  std::deque<std::pair<uint64_t, size_t>> unreadable;

  bool done() const { return results.size() == entries.size(); }
  // Results readers may see: those before the first unreadable ticket's.
  size_t readable() const {
    return unreadable.empty() ? results.size() : unreadable.front().second;
  }
  bool readable_done() const { return done() && unreadable.empty(); }

  // Records the final result of a queued or running task and updates the
  // counters. `result.state()` must be final.
  void Finish(uint32_t index, std::unique_ptr<v1::TaskResult> result,
              int64_t now_us);
};

void Scheduler::Job::Finish(uint32_t index,
                            std::unique_ptr<v1::TaskResult> result,
                            int64_t now_us) {
  TaskEntry& entry = entries[index];
  if (entry.state == v1::TASK_STATE_QUEUED) {
    --queued;
  } else {
    QFARM_CHECK(entry.state == v1::TASK_STATE_RUNNING)
        << "job " << id << " task " << index << " is already final";
    --running;
  }
  switch (result->state()) {
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
      QFARM_CHECK(false) << "state " << result->state() << " is not final";
  }
  entry.state = result->state();
  entry.worker = 0;
  entry.delayed = false;
  result->set_job_id(id);
  result->set_index(index);
  result->set_queued_us(entry.queued_us);
  result->set_dispatched_us(entry.dispatched_us);
  results.push_back(std::move(result));
  tasks[index] = v1::Task();  // Frees the text; the task never runs again.
  if (done()) finished_us = now_us;
}

struct Scheduler::Worker {
  WorkerKey key = 0;
  WorkerDesc desc;
  int64_t connected_us = 0;
  // When it last sent anything.
  int64_t heard_us = 0;
  // Tasks it may still be sent.
  uint64_t credits = 0;
  // Results accepted from it.
  uint64_t completed = 0;
  // Tasks whose current attempt runs on it.
  absl::flat_hash_set<TaskRef> running;
};

// What one mutation recorded: the jobs with new final results and, in
// journal mode, copies of those results under one ticket.
struct Scheduler::Changes {
  std::vector<JobId> jobs;
  std::vector<v1::TaskResult> results;
  // 0 while nothing needs journaling.
  uint64_t ticket = 0;
};

bool Scheduler::Later::operator()(const Delayed& a, const Delayed& b) const {
  return std::tie(a.not_before_us, a.ref.job, a.ref.index) >
         std::tie(b.not_before_us, b.ref.job, b.ref.index);
}

Scheduler::Scheduler(Clock* clock, SchedulerOptions options)
    : clock_(clock), options_(std::move(options)) {
  QFARM_CHECK(clock_ != nullptr);
  QFARM_CHECK(options_.max_batch > 0) << "max_batch must be positive";
  QFARM_CHECK(options_.default_max_attempts > 0)
      << "default_max_attempts must be positive";
  QFARM_CHECK(options_.heartbeat_timeout > absl::ZeroDuration())
      << "heartbeat_timeout must be positive";
  QFARM_CHECK(options_.retry_backoff_base >= absl::ZeroDuration() &&
              options_.retry_backoff_max >= absl::ZeroDuration())
      << "retry backoff must not be negative";
}

Scheduler::~Scheduler() = default;

uint32_t Scheduler::MaxAttempts(const v1::Task& task) const {
  return task.max_attempts() > 0 ? task.max_attempts()
                                 : options_.default_max_attempts;
}

absl::Duration Scheduler::Backoff(uint32_t attempt) const {
  absl::Duration delay = options_.retry_backoff_base;
  for (uint32_t i = 1; i < attempt && delay < options_.retry_backoff_max; ++i) {
    delay *= 2;
  }
  return std::min(delay, options_.retry_backoff_max);
}

void Scheduler::Finish(Job& job, uint32_t index,
                       std::unique_ptr<v1::TaskResult> result, int64_t now_us,
                       Changes& changes) {
  const auto kind = static_cast<size_t>(job.tasks[index].kind()) & 7;
  const auto state = static_cast<size_t>(result->state()) & 7;
  ++stats_.finished[kind][state];
  stats_.latency.Observe(
      static_cast<double>(now_us - job.entries[index].queued_us) / 1e6);
  job.Finish(index, std::move(result), now_us);
  AddOnce(changes.jobs, job.id);
  if (journal_ == nullptr) return;
  if (changes.ticket == 0) changes.ticket = next_ticket_++;
  if (job.unreadable.empty() || job.unreadable.back().first != changes.ticket) {
    job.unreadable.emplace_back(changes.ticket, job.results.size() - 1);
  }
  changes.results.push_back(*job.results.back());
}

std::vector<JobId> Scheduler::Commit(Changes& changes) {
  if (changes.ticket == 0) return std::move(changes.jobs);
  // Readable later, when OnDurable() reaches the ticket.
  ticket_jobs_[changes.ticket] = std::move(changes.jobs);
  return {};
}

void Scheduler::SendToJournal(ResultJournal* journal, Changes changes,
                              JobId cancelled_job) {
  if (journal == nullptr || changes.ticket == 0) return;
  const uint64_t ticket = changes.ticket;
  auto done = [this, ticket](absl::Status status) {
    OnDurable(ticket, status);
  };
  if (cancelled_job != 0) {
    journal->AppendCancel(cancelled_job, std::move(changes.results),
                          std::move(done));
  } else {
    journal->AppendResults(std::move(changes.results), std::move(done));
  }
}

void Scheduler::OnDurable(uint64_t ticket, const absl::Status& status) {
  std::vector<JobId> woken;
  std::function<void(const std::vector<JobId>&)> on_readable;
  if (!status.ok()) {
    QFARM_LOG(ERROR) << "journal append " << ticket
                     << " failed; its results and every later one stay "
                        "unreadable: "
                     << status;
    {
      absl::MutexLock lock(&mu_);
      if (journal_error_.ok()) {
        journal_error_ = absl::UnavailableError(absl::StrCat(
            "results not durable, the journal failed: ", status.message()));
      }
      // Every job waiting for a ticket: its readers learn of the failure.
      for (const auto& [waiting, jobs] : ticket_jobs_) {
        for (JobId id : jobs) AddOnce(woken, id);
      }
      on_readable = on_readable_;
    }
    std::sort(woken.begin(), woken.end());
    if (on_readable && !woken.empty()) on_readable(woken);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (ticket != readable_ticket_ + 1) {
      durable_ahead_.insert(ticket);
      return;
    }
    while (true) {
      ++readable_ticket_;
      auto it = ticket_jobs_.find(readable_ticket_);
      QFARM_CHECK(it != ticket_jobs_.end())
          << "journal ticket " << readable_ticket_ << " was never issued";
      for (JobId id : it->second) {
        Job& job = *jobs_.at(id);
        while (!job.unreadable.empty() &&
               job.unreadable.front().first <= readable_ticket_) {
          job.unreadable.pop_front();
        }
        AddOnce(woken, id);
      }
      ticket_jobs_.erase(it);
      if (durable_ahead_.erase(readable_ticket_ + 1) == 0) break;
    }
    on_readable = on_readable_;
  }
  if (on_readable && !woken.empty()) on_readable(woken);
}

void Scheduler::SetJournal(
    ResultJournal* journal,
    std::function<void(const std::vector<JobId>&)> on_readable) {
  absl::MutexLock lock(&mu_);
  QFARM_CHECK(journal != nullptr);
  QFARM_CHECK(journal_ == nullptr) << "SetJournal() called twice";
  QFARM_CHECK(workers_.empty()) << "SetJournal() after AddWorker()";
  journal_ = journal;
  on_readable_ = std::move(on_readable);
}

absl::Status Scheduler::Restore(RecoveredState state) {
  const int64_t now = clock_->NowMicros();
  auto not_empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::FailedPreconditionError(
        absl::StrCat("Restore() needs an empty scheduler; it has ",
                     jobs_.size(), " jobs and ", workers_.size(), " workers"));
  };
  {
    absl::MutexLock lock(&mu_);
    if (!jobs_.empty() || !workers_.empty()) return not_empty();
  }
  // Checked and built without the lock; nothing is kept on an error.
  std::sort(
      state.jobs.begin(), state.jobs.end(),
      [](const RecoveredJob& a, const RecoveredJob& b) { return a.id < b.id; });
  std::vector<std::unique_ptr<Job>> built;
  built.reserve(state.jobs.size());
  for (RecoveredJob& recovered : state.jobs) {
    const JobId id = recovered.id;
    const std::string what = absl::StrCat("recovered job ", id);
    if (id == 0) return absl::InvalidArgumentError("recovered job id 0");
    if (!built.empty() && built.back()->id == id) {
      return absl::InvalidArgumentError(absl::StrCat(what, " appears twice"));
    }
    const size_t n = recovered.tasks.size();
    if (n == 0) return absl::InvalidArgumentError(what + " has no tasks");
    if (n > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has ", n, " tasks, over the maximum"));
    }
    auto job = std::make_unique<Job>();
    job->id = id;
    job->created_us = recovered.created_us;
    job->tasks = std::move(recovered.tasks);
    job->entries.resize(n, TaskEntry{.queued_us = recovered.created_us});
    job->queued = static_cast<uint32_t>(n);
    int64_t last_finished_us = 0;
    for (v1::TaskResult& result : recovered.results) {
      const uint32_t index = result.index();
      if (index >= n) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": result for task ", index, ", past its ", n, " tasks"));
      }
      TaskEntry& entry = job->entries[index];
      if (entry.state != v1::TASK_STATE_QUEUED) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": a second result for task ", index));
      }
      if (!IsFinal(result.state())) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": result for task ", index, " has state ",
            TaskStateName(result.state()), ", which is not final"));
      }
      // Job::Finish() copies these back into the result.
      if (result.queued_us() != 0) entry.queued_us = result.queued_us();
      entry.dispatched_us = result.dispatched_us();
      entry.attempt = result.attempt();
      last_finished_us = std::max(last_finished_us, result.finished_us());
      job->Finish(index, std::make_unique<v1::TaskResult>(std::move(result)),
                  now);
    }
    if (recovered.cancelled) {
      job->cancelled = true;
      for (uint32_t index = 0; index < n; ++index) {
        if (job->entries[index].state != v1::TASK_STATE_QUEUED) continue;
        v1::TaskResult result;
        result.set_state(v1::TASK_STATE_CANCELLED);
        result.set_error("job cancelled");
        result.set_finished_us(now);
        job->Finish(index, std::make_unique<v1::TaskResult>(std::move(result)),
                    now);
        last_finished_us = now;
      }
    }
    if (job->done() && last_finished_us != 0) {
      job->finished_us = last_finished_us;
    }
    built.push_back(std::move(job));
  }

  absl::MutexLock lock(&mu_);
  if (!jobs_.empty() || !workers_.empty()) return not_empty();
  for (std::unique_ptr<Job>& job : built) {
    for (uint32_t index = 0; index < job->entries.size(); ++index) {
      if (job->entries[index].state != v1::TASK_STATE_QUEUED) continue;
      queue_.push_back(TaskRef{job->id, index});
      ++queued_;
      ++ready_;
    }
    next_job_id_ = std::max(next_job_id_, job->id + 1);
    const JobId id = job->id;
    jobs_.emplace(id, std::move(job));
  }
  return absl::OkStatus();
}

absl::StatusOr<JobId> Scheduler::SubmitJob(std::vector<v1::Task> tasks,
                                           const AcceptedHook& on_accepted) {
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
  // Before any task can be dispatched, so a journal sees the job before
  // any of its results.
  if (on_accepted) on_accepted(id, job->created_us, job->tasks);
  for (uint32_t i = 0; i < n; ++i) queue_.push_back(TaskRef{id, i});
  queued_ += n;
  ready_ += n;
  jobs_.emplace(id, std::move(job));
  return id;
}

WorkerKey Scheduler::AddWorker(WorkerDesc desc) {
  const int64_t now = clock_->NowMicros();
  auto worker = std::make_unique<Worker>();
  worker->desc = std::move(desc);
  worker->connected_us = now;
  worker->heard_us = now;
  absl::MutexLock lock(&mu_);
  const WorkerKey key = next_worker_key_++;
  worker->key = key;
  // The name the shell gives a worker that sent none.
  if (worker->desc.worker_id.empty()) {
    worker->desc.worker_id = absl::StrCat("worker-", key);
  }
  workers_.emplace(key, std::move(worker));
  return key;
}

void Scheduler::AddCredits(WorkerKey worker, uint32_t credits) {
  const int64_t now = clock_->NowMicros();
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  it->second->credits += credits;
  it->second->heard_us = now;
}

bool Scheduler::Heartbeat(WorkerKey worker) {
  const int64_t now = clock_->NowMicros();
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker);
  if (it == workers_.end()) return false;
  it->second->heard_us = now;
  return true;
}

void Scheduler::RemoveWorkerLocked(
    std::map<WorkerKey, std::unique_ptr<Worker>>::iterator it,
    const std::string& reason, int64_t now_us, Changes& changes) {
  std::unique_ptr<Worker> worker = std::move(it->second);
  workers_.erase(it);

  // In their original order: oldest job, lowest index.
  std::vector<TaskRef> refs(worker->running.begin(), worker->running.end());
  std::sort(refs.begin(), refs.end(), [](const TaskRef& a, const TaskRef& b) {
    return a.job != b.job ? a.job < b.job : a.index < b.index;
  });
  for (const TaskRef& ref : refs) {
    Job& job = *jobs_.at(ref.job);
    TaskEntry& entry = job.entries[ref.index];
    const uint32_t max_attempts = MaxAttempts(job.tasks[ref.index]);
    if (entry.attempt >= max_attempts) {
      v1::TaskResult result;
      result.set_attempt(entry.attempt);
      result.set_state(v1::TASK_STATE_FAILED);
      result.set_error(absl::StrCat(
          "worker lost while running the task ", Times(entry.attempt),
          " (attempt ", entry.attempt, " of ", max_attempts,
          "); last worker: ", worker->desc.worker_id, " (", reason, ")"));
      result.set_worker(worker->desc.worker_id);
      result.set_finished_us(now_us);
      Finish(job, ref.index,
             std::make_unique<v1::TaskResult>(std::move(result)), now_us,
             changes);
      continue;
    }
    entry.state = v1::TASK_STATE_QUEUED;
    entry.worker = 0;
    --job.running;
    ++job.queued;
    ++queued_;
    const absl::Duration backoff = Backoff(entry.attempt);
    if (backoff <= absl::ZeroDuration()) {
      retry_.push_back(ref);
      ++ready_;
    } else {
      entry.delayed = true;
      delayed_.push_back(
          {.not_before_us = now_us + absl::ToInt64Microseconds(backoff),
           .ref = ref});
      std::push_heap(delayed_.begin(), delayed_.end(), Later());
    }
  }
}

std::vector<JobId> Scheduler::RemoveWorker(WorkerKey key) {
  const int64_t now = clock_->NowMicros();
  Changes changes;
  std::vector<JobId> changed;
  ResultJournal* journal;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(key);
    if (it == workers_.end()) return changed;
    RemoveWorkerLocked(it, "connection ended", now, changes);
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
    for (auto it = workers_.begin(); it != workers_.end();) {
      const int64_t silent_us = now - it->second->heard_us;
      auto next = std::next(it);
      if (silent_us > timeout_us) {
        expiry.workers.push_back(it->first);
        RemoveWorkerLocked(
            it,
            absl::StrCat("silent for ",
                         absl::FormatDuration(absl::Microseconds(silent_us))),
            now, changes);
      }
      it = next;
    }
    expiry.jobs = Commit(changes);
    journal = journal_;
  }
  SendToJournal(journal, std::move(changes));
  std::sort(expiry.jobs.begin(), expiry.jobs.end());
  return expiry;
}

void Scheduler::PromoteDue(int64_t now_us) {
  while (!delayed_.empty() && delayed_.front().not_before_us <= now_us) {
    std::pop_heap(delayed_.begin(), delayed_.end(), Later());
    const TaskRef ref = delayed_.back().ref;
    delayed_.pop_back();
    TaskEntry& entry = jobs_.at(ref.job)->entries[ref.index];
    // Cancelled while it waited: nothing to do.
    if (entry.state != v1::TASK_STATE_QUEUED || !entry.delayed) continue;
    entry.delayed = false;
    retry_.push_back(ref);
    ++ready_;
  }
}

absl::Time Scheduler::NextWakeup() const {
  absl::MutexLock lock(&mu_);
  if (delayed_.empty()) return absl::InfiniteFuture();
  return absl::FromUnixMicros(delayed_.front().not_before_us);
}

std::pair<Scheduler::Job*, uint32_t> Scheduler::PopQueued(Job*& cache) {
  while (true) {
    std::deque<TaskRef>& from = retry_.empty() ? queue_ : retry_;
    QFARM_CHECK(!from.empty()) << "queue holds no live task";
    const TaskRef ref = from.front();
    from.pop_front();
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
  if (stale_ < 1024 || stale_ < ready_) return;
  for (std::deque<TaskRef>* queue : {&retry_, &queue_}) {
    std::deque<TaskRef> live;
    Job* job = nullptr;
    for (const TaskRef& ref : *queue) {
      if (job == nullptr || job->id != ref.job) job = jobs_.at(ref.job).get();
      if (job->entries[ref.index].state == v1::TASK_STATE_QUEUED) {
        live.push_back(ref);
      }
    }
    queue->swap(live);
  }
  stale_ = 0;
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

std::vector<Dispatch> Scheduler::TakeDispatches() {
  const int64_t now = clock_->NowMicros();
  std::vector<Dispatch> out;
  absl::MutexLock lock(&mu_);
  PromoteDue(now);
  if (ready_ == 0) return out;

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
  while (ready_ > 0 && !ready.empty()) {
    const size_t share = std::clamp<size_t>(
        (ready_ + ready.size() - 1) / ready.size(), 1, options_.max_batch);
    for (Ready& r : ready) {
      if (ready_ == 0) break;
      Worker& worker = *r.worker;
      size_t take = std::min<uint64_t>(share, worker.credits);
      take = std::min(take, ready_);
      worker.credits -= take;
      for (size_t k = 0; k < take; ++k) {
        if (r.open == kNone ||
            static_cast<size_t>(out[r.open].assignments.size()) >=
                options_.max_batch) {
          r.open = out.size();
          Dispatch& dispatch = out.emplace_back();
          dispatch.worker = worker.key;
          dispatch.assignments.Reserve(static_cast<int>(std::min<uint64_t>(
              {options_.max_batch, ready_, worker.credits + take - k})));
        }
        auto [job, index] = PopQueued(cache);
        TaskEntry& entry = job->entries[index];
        entry.state = v1::TASK_STATE_RUNNING;
        ++entry.attempt;
        if (entry.attempt > 1) ++stats_.retried;
        entry.dispatched_us = now;
        entry.worker = worker.key;
        --job->queued;
        ++job->running;
        --queued_;
        --ready_;
        worker.running.insert(TaskRef{job->id, index});
        v1::Assignment& assignment = NewAssignment(out[r.open].assignments);
        assignment.set_job_id(job->id);
        assignment.set_index(index);
        assignment.set_attempt(entry.attempt);
        // A spare's task and text keep their allocations.
        *assignment.mutable_task() = job->tasks[index];
      }
    }
    std::erase_if(ready, [](const Ready& r) { return r.worker->credits == 0; });
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
    auto worker_it = workers_.find(key);
    if (worker_it == workers_.end()) return changed;
    Worker& worker = *worker_it->second;
    worker.heard_us = now;
    Job* job = nullptr;
    auto never_given = [&](const v1::TaskResult& r) {
      if (violation != nullptr && violation->empty()) {
        *violation = absl::StrCat("result for job ", r.job_id(), " task ",
                                  r.index(), " attempt ", r.attempt(),
                                  ": that task was never given to this "
                                  "worker");
      }
    };
    for (std::unique_ptr<v1::TaskResult>& owned : results) {
      v1::TaskResult& result = *owned;
      if (job == nullptr || job->id != result.job_id()) {
        auto it = jobs_.find(result.job_id());
        if (it == jobs_.end()) {
          never_given(result);
          continue;
        }
        job = it->second.get();
      }
      if (result.index() >= job->entries.size()) {
        never_given(result);
        continue;
      }
      const TaskEntry& entry = job->entries[result.index()];
      // An attempt not yet made, or the current attempt running elsewhere,
      // was never this worker's; a late result of an earlier attempt (or
      // after a cancel) is dropped quietly.
      if (result.attempt() == 0 || result.attempt() > entry.attempt ||
          (entry.state == v1::TASK_STATE_RUNNING &&
           entry.attempt == result.attempt() && entry.worker != key)) {
        never_given(result);
        continue;
      }
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
            "worker ", worker.desc.worker_id, " sent invalid state ", state,
            " (", TaskStateName(static_cast<v1::TaskState>(state)),
            ") as the task's result"));
      }
      if (result.worker().empty()) result.set_worker(worker.desc.worker_id);
      const uint32_t index = result.index();
      Finish(*job, index, std::move(owned), now, changes);
    }
    changed = Commit(changes);
    journal = journal_;
  }
  SendToJournal(journal, std::move(changes));
  return changed;
}

absl::StatusOr<ResultsPage> Scheduler::ReadResults(JobId id, size_t cursor,
                                                   size_t max_results) const {
  absl::StatusOr<ResultsView> view = ViewResults(id, cursor, max_results);
  if (!view.ok()) return view.status();
  ResultsPage page;
  page.results.reserve(view->results.size());
  for (const v1::TaskResult* result : view->results) {
    page.results.push_back(*result);
  }
  page.next_cursor = view->next_cursor;
  page.finished = view->finished;
  return page;
}

absl::StatusOr<ResultsView> Scheduler::ViewResults(JobId id, size_t cursor,
                                                   size_t max_results) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  }
  const Job& job = *it->second;
  const size_t size = job.readable();
  const size_t begin = std::min(cursor, size);
  // Nothing left to read, and what is recorded never will be readable.
  if (begin == size && !job.unreadable.empty() && !journal_error_.ok()) {
    return journal_error_;
  }
  const size_t end = begin + std::min(max_results, size - begin);
  ResultsView page;
  page.results.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) {
    page.results.push_back(job.results[i].get());
  }
  page.next_cursor = end;
  page.finished = job.readable_done() && end == size;
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
  if (!job.readable_done()) {
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
  info.set_finished_us(job.readable_done() ? job.finished_us : 0);
  return info;
}

std::vector<JobId> Scheduler::Unfinished(std::vector<JobId> jobs) const {
  absl::MutexLock lock(&mu_);
  std::erase_if(jobs, [this](JobId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = jobs_.find(id);
    return it == jobs_.end() || it->second->readable_done();
  });
  return jobs;
}

absl::StatusOr<v1::TaskState> Scheduler::GetTaskState(JobId id,
                                                      uint32_t index) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  }
  const Job& job = *it->second;
  if (index >= job.entries.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task index ", index, " is out of range: job ", id,
                     " has ", job.entries.size(), " tasks"));
  }
  return job.entries[index].state;
}

absl::StatusOr<CancelOutcome> Scheduler::CancelJob(JobId id) {
  const int64_t now = clock_->NowMicros();
  CancelOutcome outcome;
  Changes changes;
  ResultJournal* journal;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
      return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
    }
    Job& job = *it->second;
    if (job.done()) return outcome;
    for (uint32_t index = 0; index < job.entries.size(); ++index) {
      const TaskEntry& entry = job.entries[index];
      v1::TaskResult result;
      result.set_state(v1::TASK_STATE_CANCELLED);
      result.set_attempt(entry.attempt);
      result.set_finished_us(now);
      if (entry.state == v1::TASK_STATE_QUEUED) {
        --queued_;
        // A delayed task's heap entry is dropped when it comes due; a queue
        // entry turns stale and is skipped or compacted away.
        if (!entry.delayed) {
          --ready_;
          ++stale_;
        }
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
      Finish(job, index, std::make_unique<v1::TaskResult>(std::move(result)),
             now, changes);
      ++outcome.cancelled;
    }
    job.cancelled = true;
    std::sort(outcome.workers_to_notify.begin(),
              outcome.workers_to_notify.end());
    outcome.workers_to_notify.erase(
        std::unique(outcome.workers_to_notify.begin(),
                    outcome.workers_to_notify.end()),
        outcome.workers_to_notify.end());
    MaybeCompactQueue();
    Commit(changes);
    journal = journal_;
  }
  SendToJournal(journal, std::move(changes), id);
  return outcome;
}

SchedulerStats Scheduler::Stats() const {
  absl::MutexLock lock(&mu_);
  SchedulerStats stats = stats_;
  stats.queued = queued_;
  return stats;
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
