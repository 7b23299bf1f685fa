#include "coordinator/scheduler.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

}  // namespace

absl::Status Scheduler::NotFound(JobId id) const {
  if (auto it = released_.find(id); it != released_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "job ", id, " not found: it finished at ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                         absl::FromUnixMicros(it->second.finished_us),
                         absl::UTCTimeZone()),
        " and was released under the retention setting ", it->second.setting));
  }
  if (id != 0 && id < jobs_.next_id()) {
    return absl::NotFoundError(absl::StrCat(
        "job ", id,
        " not found: it finished and was released under the retention "
        "settings (--retain-finished, --retain-finished-bytes) before the ",
        kMaxReleased, " most recently released jobs"));
  }
  return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
}

void Scheduler::RememberReleased(ReleasedJob job) {
  const JobId id = job.id;
  if (!released_.try_emplace(id, std::move(job)).second) return;
  released_order_.push_back(id);
  while (released_order_.size() > kMaxReleased) {
    released_.erase(released_order_.front());
    released_order_.pop_front();
  }
}

void Scheduler::AddFinished(const Job& job) {
  finished_.emplace(job.finished_us, job.id);
  finished_bytes_ += job.result_bytes;
  if (!job.stored) in_memory_finished_.push_back(job.id);
}

size_t Scheduler::StoreFinished() {
  std::vector<std::unique_ptr<Job>> freed;
  std::vector<v1::StoredJob> summaries;
  ResultJournal* journal;
  {
    absl::MutexLock lock(&mu_);
    journal = journal_;
    if (journal == nullptr || !journal->StoresResults()) {
      in_memory_finished_.clear();
      return 0;
    }
    std::erase_if(in_memory_finished_,
                  [&](JobId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                    Job* job = jobs_.Find(id);
                    if (job == nullptr || job->stored) return true;
                    if (job->holds > 0 || !job->readable_done()) return false;
                    // All its results are durable, so they precede the
                    // summary in the journal.
                    if (!job->summarized) {
                      summaries.push_back(job->Summary());
                      job->summarized = true;
                    }
                    freed.push_back(job->Store());
                    ++stored_jobs_;
                    return true;
                  });
  }
  const size_t stored = freed.size();
  freed.clear();  // Without the lock.
  if (!summaries.empty()) journal->AppendStored(std::move(summaries), nullptr);
  return stored;
}

absl::Status Scheduler::LoadStored(JobId id) {
  v1::JobInfo summary;
  ResultJournal* journal;
  {
    absl::MutexLock lock(&mu_);
    const Job* job = jobs_.Find(id);
    if (job == nullptr) return NotFound(id);
    if (!job->stored) return absl::OkStatus();
    summary = job->Info();
    journal = journal_;
  }
  QFARM_CHECK(journal != nullptr)
      << "job " << id << " stored without a journal";
  absl::StatusOr<std::vector<v1::TaskResult>> results =
      journal->LoadResults(id);
  if (!results.ok()) {
    return absl::Status(results.status().code(),
                        absl::StrCat("job ", id,
                                     "'s results cannot be read back from the "
                                     "journal: ",
                                     results.status().message()));
  }
  absl::StatusOr<Job::Loaded> loaded =
      LoadResults(summary, *std::move(results));
  if (!loaded.ok()) return loaded.status();
  absl::MutexLock lock(&mu_);
  Job* job = jobs_.Find(id);
  if (job == nullptr) return NotFound(id);
  if (job->stored) {  // Else another reader loaded it meanwhile.
    job->Load(*std::move(loaded));
    --stored_jobs_;
    in_memory_finished_.push_back(id);
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> Scheduler::ReadLoaded(
    JobId id, absl::FunctionRef<absl::StatusOr<T>(const Job&)> read) {
  // A reader that does not hold the job may see it stored again between the
  // load and the lock (StoreFinished() runs about once a second): it loads
  // again, a bounded number of times.
  constexpr int kMaxLoads = 3;
  for (int loads = 0;; ++loads) {
    {
      absl::MutexLock lock(&mu_);
      const Job* job = jobs_.Find(id);
      if (job == nullptr) return NotFound(id);
      if (!job->stored) return read(*job);
    }
    if (loads == kMaxLoads) {
      return absl::UnavailableError(
          absl::StrCat("job ", id, " was stored again each time its results ",
                       "were loaded back; try again"));
    }
    if (absl::Status status = LoadStored(id); !status.ok()) return status;
  }
}

std::vector<ReleasedJob> Scheduler::ReleaseFinished() {
  std::vector<ReleasedJob> released;
  std::vector<std::unique_ptr<Job>> freed;
  ResultJournal* journal;
  {
    absl::MutexLock lock(&mu_);
    const int64_t now = clock_->NowMicros();
    const bool by_age = options_.retain_finished != absl::InfiniteDuration();
    const int64_t keep_us =
        by_age ? absl::ToInt64Microseconds(options_.retain_finished) : 0;
    // Oldest finished first: once one is young enough and the bytes fit,
    // so are all after it.
    for (auto it = finished_.begin(); it != finished_.end();) {
      const auto [finished_us, id] = *it;
      const bool old = by_age && now - finished_us >= keep_us;
      const bool over = finished_bytes_ > options_.retain_finished_bytes;
      if (!old && !over) break;
      Job& job = jobs_.Get(id);
      if (job.holds > 0 || !job.readable_done()) {
        ++it;
        continue;
      }
      finished_bytes_ -= job.result_bytes;
      if (job.stored) --stored_jobs_;
      it = finished_.erase(it);
      ReleasedJob done{
          .id = id,
          .finished_us = finished_us,
          .setting =
              old ? absl::StrCat("--retain-finished=",
                                 absl::FormatDuration(options_.retain_finished))
                  : absl::StrCat("--retain-finished-bytes=",
                                 options_.retain_finished_bytes)};
      RememberReleased(done);
      released.push_back(std::move(done));
    }
    std::vector<JobId> ids;
    ids.reserve(released.size());
    for (const ReleasedJob& job : released) ids.push_back(job.id);
    freed = jobs_.Erase(std::move(ids));
    journal = journal_;
  }
  freed.clear();  // A large job's results are freed without the lock.
  if (journal != nullptr && !released.empty()) {
    journal->AppendRelease(released, nullptr);
  }
  return released;
}

bool Scheduler::HoldJob(JobId id) {
  absl::MutexLock lock(&mu_);
  Job* job = jobs_.Find(id);
  if (job == nullptr) return false;
  ++job->holds;
  return true;
}

void Scheduler::UnholdJob(JobId id) {
  absl::MutexLock lock(&mu_);
  Job* job = jobs_.Find(id);
  if (job != nullptr && job->holds > 0) --job->holds;
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

absl::Status Scheduler::CheckAccepted(absl::string_view kind) const {
  const std::vector<std::string>& accepted = options_.accepted_kinds;
  if (accepted.empty() ||
      std::find(accepted.begin(), accepted.end(), kind) != accepted.end()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("kind \"", kind, "\" is not accepted here (accepted: ",
                   absl::StrJoin(accepted, ", "), ")"));
}

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

void Scheduler::ReleaseKind(KindId kind, uint64_t refs) {
  if (kinds_.Release(kind, refs)) queue_.Forget(kind);
}

void Scheduler::Finish(Job& job, uint32_t index,
                       std::unique_ptr<v1::TaskResult> result, int64_t now_us,
                       Changes& changes) {
  const KindId kind = job.entries[index].kind;
  kinds_.CountFinished(kind, static_cast<size_t>(result->state()));
  ReleaseKind(kind);
  stats_.latency.Observe(
      static_cast<double>(now_us - job.entries[index].queued_us) / 1e6);
  job.Finish(index, std::move(result), now_us);
  if (job.done()) AddFinished(job);
  AddOnce(changes.jobs, job.id);
  if (journal_ == nullptr) return;
  if (changes.ticket == 0) changes.ticket = gate_.Issue();
  if (job.unreadable.empty() || job.unreadable.back().first != changes.ticket) {
    job.unreadable.emplace_back(changes.ticket, job.results.size() - 1);
  }
  changes.results.push_back(*job.results.back());
}

std::vector<JobId> Scheduler::Commit(Changes& changes) {
  if (changes.ticket == 0) return std::move(changes.jobs);
  // Readable later, when OnDurable() reaches the ticket.
  gate_.Hold(changes.ticket, std::move(changes.jobs));
  return {};
}

void Scheduler::SendToJournal(ResultJournal* journal, Changes changes,
                              JobId cancelled_job) {
  if (journal == nullptr) return;
  if (!changes.attempts.empty()) {
    journal->AppendAttempts(std::move(changes.attempts), nullptr);
  }
  if (changes.ticket == 0) return;
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
  if (!status.ok()) {
    QFARM_LOG(ERROR) << "journal append " << ticket
                     << " failed; its results and every later one stay "
                        "unreadable: "
                     << status;
  }
  std::vector<JobId> woken;
  std::function<void(const std::vector<JobId>&)> on_readable;
  {
    absl::MutexLock lock(&mu_);
    if (!status.ok()) {
      // Readers of every job held back learn that its results never come.
      woken = gate_.Fail(status);
    } else {
      woken = gate_.Durable(ticket);
      for (JobId id : woken) jobs_.Get(id).ReleaseUpTo(gate_.released());
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
    if (!built.empty() && built.back()->id == recovered.id) {
      return absl::InvalidArgumentError(
          absl::StrCat("recovered job ", recovered.id, " appears twice"));
    }
    absl::StatusOr<std::unique_ptr<Job>> job =
        RestoreJob(std::move(recovered), now);
    if (!job.ok()) return job.status();
    built.push_back(*std::move(job));
  }

  absl::MutexLock lock(&mu_);
  if (!jobs_.empty() || !workers_.empty()) return not_empty();
  for (std::unique_ptr<Job>& job : built) {
    for (uint32_t index = 0; index < job->entries.size(); ++index) {
      TaskEntry& entry = job->entries[index];
      if (entry.state != v1::TASK_STATE_QUEUED) continue;
      // Restored jobs are never refused for their kinds.
      entry.kind =
          *kinds_.Acquire(job->tasks[index].kind(), 1, /*for_tasks=*/false);
      queue_.PushBack(TaskRef{job->id, index}, entry.kind);
    }
    jobs_.ContinueAfter(job->id);
    if (job->done()) AddFinished(*job);
    if (job->stored) ++stored_jobs_;
    jobs_.Add(std::move(job));
  }
  for (ReleasedJob& released : state.released) {
    jobs_.ContinueAfter(released.id);
    RememberReleased(std::move(released));
  }
  return absl::OkStatus();
}

absl::StatusOr<JobId> Scheduler::SubmitJob(
    std::vector<v1::Task> tasks, const std::vector<std::string>& kinds,
    const AcceptedHook& on_accepted, std::string client, bool hold) {
  if (tasks.empty()) return absl::InvalidArgumentError("job has no tasks");
  const size_t n = tasks.size();
  if (n > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("job of ", n, " tasks is over the maximum of ",
                     std::numeric_limits<uint32_t>::max()));
  }
  // Checked and built without the lock: only the queue and the kinds need
  // it. Each task's kind is one of `names`, by its place there.
  std::vector<absl::string_view> names;
  std::vector<uint64_t> counts;
  std::vector<uint32_t> kind_of(n);
  for (size_t i = 0; i < n; ++i) {
    const v1::Task& task = tasks[i];
    if (task.kind().empty() && task.kind_index() >= kinds.size()) {
      return absl::InvalidArgumentError(
          kinds.empty()
              ? absl::StrCat("task ", i,
                             ": kind name is empty, and the job has no kind "
                             "table for its kind_index")
              : absl::StrCat("task ", i, ": kind_index ", task.kind_index(),
                             " is past the job's kind table of ", kinds.size(),
                             " names"));
    }
    const absl::string_view kind =
        task.kind().empty() ? absl::string_view(kinds[task.kind_index()])
                            : absl::string_view(task.kind());
    absl::Status valid = ValidateTask(task, kind, options_.limits);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("task ", i, ": ", valid.message()));
    }
    // Jobs hold runs of one kind, and few kinds.
    if (i > 0 && kind == names[kind_of[i - 1]]) {
      kind_of[i] = kind_of[i - 1];
    } else {
      auto it = std::find(names.begin(), names.end(), kind);
      if (it == names.end()) {
        if (absl::Status accepted = CheckAccepted(kind); !accepted.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("task ", i, ": ", accepted.message()));
        }
        names.push_back(kind);
        counts.push_back(0);
        it = names.end() - 1;
      }
      kind_of[i] = static_cast<uint32_t>(it - names.begin());
    }
    ++counts[kind_of[i]];
  }
  std::unique_ptr<Job> job =
      Job::Create(/*id=*/0, clock_->NowMicros(), std::move(tasks));
  job->client = std::move(client);
  job->holds = hold ? 1 : 0;

  absl::MutexLock lock(&mu_);
  if (n > options_.max_queued) {
    return absl::ResourceExhaustedError(
        absl::StrCat("job of ", n, " tasks is over the queue limit of ",
                     options_.max_queued, " tasks"));
  }
  if (queue_.queued() + n > options_.max_queued) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "queue full: ", queue_.queued(), " of ", options_.max_queued,
        " tasks queued, job of ", n, " does not fit"));
  }
  std::vector<KindId> ids;
  ids.reserve(names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    absl::StatusOr<KindId> id =
        kinds_.Acquire(names[k], counts[k], /*for_tasks=*/true);
    if (!id.ok()) {
      for (size_t j = 0; j < ids.size(); ++j) ReleaseKind(ids[j], counts[j]);
      return id.status();
    }
    ids.push_back(*id);
  }
  if (ids.size() == 1) {
    for (TaskEntry& entry : job->entries) entry.kind = ids[0];
  } else {
    for (size_t i = 0; i < n; ++i) job->entries[i].kind = ids[kind_of[i]];
  }
  const JobId id = jobs_.NextId();
  job->id = id;
  // Before any task can be dispatched, so a journal sees the job before
  // any of its results.
  if (on_accepted) on_accepted(id, job->created_us);
  const std::vector<TaskEntry>& entries = job->entries;
  if (ids.size() == 1) {
    queue_.PushJob(id, static_cast<uint32_t>(n), ids[0]);
  } else {
    queue_.PushJob(id, static_cast<uint32_t>(n),
                   [&entries](uint32_t i) { return entries[i].kind; });
  }
  jobs_.Add(std::move(job));
  return id;
}

absl::StatusOr<ResultsPage> Scheduler::ReadResults(JobId id, size_t cursor,
                                                   size_t max_results) {
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
                                                   size_t max_results) {
  return ReadLoaded<ResultsView>(
      id, [&](const Job& job) -> absl::StatusOr<ResultsView> {
        mu_.AssertHeld();  // Called under the lock, for the analysis.
        const size_t size = job.readable();
        const size_t begin = std::min(cursor, size);
        // Nothing left to read, and what is recorded never will be readable.
        if (begin == size && !job.unreadable.empty() && !gate_.error().ok()) {
          return gate_.error();
        }
        const size_t end = begin + std::min(max_results, size - begin);
        ResultsView page;
        page.results.reserve(end - begin);
        for (size_t i = begin; i < end; ++i) {
          page.results.push_back(job.results[i].get());
        }
        page.next_cursor = end;
        page.finished = job.readable_done() && end == size;
        page.journal_order = job.journal_order;
        return page;
      });
}

absl::StatusOr<v1::JobInfo> Scheduler::GetJob(JobId id) const {
  absl::MutexLock lock(&mu_);
  const Job* job = jobs_.Find(id);
  if (job == nullptr) return NotFound(id);
  v1::JobInfo info = job->Info();
  AddUnserved(*job, info);
  return info;
}

void Scheduler::AddUnserved(const Job& job, v1::JobInfo& info) const {
  auto unserved = [this](KindId kind) {
    mu_.AssertHeld();  // Called within this scope, for the analysis.
    return !workers_.Offered(kind);
  };
  // The scan only when some waiting task lacks a worker.
  if (job.queued == 0 || !queue_.AnyQueued(unserved)) return;
  std::map<std::string, uint32_t> waiting;
  for (const TaskEntry& entry : job.entries) {
    if (entry.state == v1::TASK_STATE_QUEUED && unserved(entry.kind)) {
      ++waiting[kinds_.name(entry.kind)];
    }
  }
  for (const auto& [kind, tasks] : waiting) {
    v1::UnservedKind* out = info.add_unserved();
    out->set_kind(kind);
    out->set_tasks(tasks);
  }
}

Scheduler::JobsPage Scheduler::ListJobs(v1::JobState state, JobId before,
                                        size_t max_jobs,
                                        size_t max_scanned) const {
  JobsPage page;
  max_jobs = std::max<size_t>(max_jobs, 1);
  max_scanned = std::max<size_t>(max_scanned, 1);
  absl::MutexLock lock(&mu_);
  page.as_of_us = clock_->NowMicros();
  const std::vector<JobId>& ids = jobs_.ids();
  // Downwards from the first id at or above `before`, which is left out.
  auto it = before == 0 ? ids.end()
                        : std::lower_bound(ids.begin(), ids.end(), before);
  for (size_t scanned = 0; it != ids.begin() && page.jobs.size() < max_jobs &&
                           scanned < max_scanned;
       ++scanned) {
    const Job& job = *jobs_.Find(*--it);
    if (state == v1::JOB_STATE_UNSPECIFIED || job.State() == state) {
      page.jobs.push_back(job.Info());
    }
  }
  if (it != ids.begin()) page.next_before = *it;
  return page;
}

std::vector<JobId> Scheduler::Unfinished(std::vector<JobId> jobs) const {
  absl::MutexLock lock(&mu_);
  std::erase_if(jobs, [this](JobId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const Job* job = jobs_.Find(id);
    return job == nullptr || job->readable_done();
  });
  return jobs;
}

absl::StatusOr<v1::TaskState> Scheduler::GetTaskState(JobId id,
                                                      uint32_t index) {
  return ReadLoaded<v1::TaskState>(
      id, [&](const Job& job) -> absl::StatusOr<v1::TaskState> {
        if (index >= job.entries.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("task index ", index, " is out of range: job ", id,
                           " has ", job.entries.size(), " tasks"));
        }
        return job.entries[index].state;
      });
}

absl::StatusOr<CancelOutcome> Scheduler::CancelJob(JobId id) {
  const int64_t now = clock_->NowMicros();
  CancelOutcome outcome;
  Changes changes;
  ResultJournal* journal;
  {
    absl::MutexLock lock(&mu_);
    Job* job = jobs_.Find(id);
    if (job == nullptr) return NotFound(id);
    if (job->done()) return outcome;
    for (uint32_t index = 0; index < job->entries.size(); ++index) {
      const TaskEntry& entry = job->entries[index];
      auto result = std::make_unique<v1::TaskResult>();
      result->set_state(v1::TASK_STATE_CANCELLED);
      result->set_attempt(entry.attempt);
      result->set_finished_us(now);
      if (entry.state == v1::TASK_STATE_QUEUED) {
        queue_.Drop(entry.kind, entry.delayed);
        result->set_error("job cancelled");
      } else if (entry.state == v1::TASK_STATE_RUNNING) {
        Worker& worker = *workers_.Find(entry.worker);
        worker.running.erase(TaskRef{id, index});
        outcome.workers_to_notify.push_back(worker.key);
        result->set_worker(worker.desc.worker_id);
        result->set_error(absl::StrCat("job cancelled while running on worker ",
                                       worker.desc.worker_id));
      } else {
        continue;
      }
      Finish(*job, index, std::move(result), now, changes);
      ++outcome.cancelled;
    }
    job->cancelled = true;
    std::sort(outcome.workers_to_notify.begin(),
              outcome.workers_to_notify.end());
    outcome.workers_to_notify.erase(
        std::unique(outcome.workers_to_notify.begin(),
                    outcome.workers_to_notify.end()),
        outcome.workers_to_notify.end());
    Job* cache = nullptr;
    queue_.MaybeCompact([this, &cache](const TaskRef& ref) {
      mu_.AssertHeld();  // Called within this scope, for the analysis.
      return IsQueued(ref, cache);
    });
    Commit(changes);
    journal = journal_;
  }
  SendToJournal(journal, std::move(changes), id);
  return outcome;
}

SchedulerStats Scheduler::Stats() const {
  absl::MutexLock lock(&mu_);
  SchedulerStats stats = stats_;
  stats.finished = kinds_.Finished();
  stats.queued = queue_.queued();
  stats.finished_jobs = finished_.size();
  stats.stored_jobs = stored_jobs_;
  return stats;
}

std::vector<v1::WorkerInfo> Scheduler::ListWorkers() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::WorkerInfo> out;
  out.reserve(workers_.size());
  for (const auto& [key, worker] : workers_.all()) {
    v1::WorkerInfo& info = out.emplace_back();
    info.set_worker_id(worker->desc.worker_id);
    info.set_mode(worker->desc.mode);
    info.set_slots(worker->desc.slots);
    info.set_in_flight(static_cast<uint32_t>(worker->running.size()));
    info.set_completed(worker->completed);
    info.set_peer(worker->desc.peer);
    info.set_connected_us(worker->connected_us);
    for (const std::string& kind : worker->desc.kinds) info.add_kinds(kind);
  }
  return out;
}

size_t Scheduler::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.queued();
}

}  // namespace qfarm::coordinator
