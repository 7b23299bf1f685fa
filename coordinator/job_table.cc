#include "coordinator/job_table.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/task_spec.h"

namespace qfarm::coordinator {

std::unique_ptr<Job> Job::Create(JobId id, int64_t created_us,
                                 std::vector<v1::Task> tasks) {
  auto job = std::make_unique<Job>();
  job->id = id;
  job->created_us = created_us;
  job->entries.resize(tasks.size(), TaskEntry{.queued_us = created_us});
  job->queued = static_cast<uint32_t>(tasks.size());
  job->tasks = std::move(tasks);
  return job;
}

void JobTable::Add(std::unique_ptr<Job> job) {
  const JobId id = job->id;
  if (!jobs_.emplace(id, std::move(job)).second) return;
  // Ids come in order (Restore() adds recovered jobs sorted); any other
  // order still keeps ids_ sorted.
  if (ids_.empty() || ids_.back() < id) {
    ids_.push_back(id);
  } else {
    ids_.insert(std::lower_bound(ids_.begin(), ids_.end(), id), id);
  }
}

std::vector<std::unique_ptr<Job>> JobTable::Erase(std::vector<JobId> ids) {
  std::vector<std::unique_ptr<Job>> taken;
  taken.reserve(ids.size());
  for (JobId id : ids) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    taken.push_back(std::move(it->second));
    jobs_.erase(it);
  }
  // One pass over ids_, which stays sorted: a release of thousands of jobs
  // among many costs one move of the rest, not one per job.
  std::sort(ids.begin(), ids.end());
  std::erase_if(ids_, [&ids](JobId id) {
    return std::binary_search(ids.begin(), ids.end(), id);
  });
  return taken;
}

uint64_t ApproxBytes(const v1::TaskResult& result) {
  return sizeof(v1::TaskResult) + sizeof(std::unique_ptr<v1::TaskResult>) +
         result.value().capacity() + result.error().capacity() +
         result.worker().capacity() + result.executor().capacity();
}

v1::JobState Job::State() const {
  if (!readable_done()) return v1::JOB_STATE_RUNNING;
  if (cancelled) return v1::JOB_STATE_CANCELLED;
  return ok == size() ? v1::JOB_STATE_DONE : v1::JOB_STATE_FAILED;
}

v1::JobInfo Job::Info() const {
  v1::JobInfo info;
  info.set_job_id(id);
  info.set_state(State());
  info.set_total(static_cast<uint32_t>(size()));
  info.set_queued(queued);
  info.set_running(running);
  info.set_ok(ok);
  info.set_failed(failed);
  info.set_timed_out(timed_out);
  info.set_cancelled(cancelled_tasks);
  info.set_created_us(created_us);
  info.set_finished_us(readable_done() ? finished_us : 0);
  info.set_client(client);
  return info;
}

void Job::Finish(uint32_t index, std::unique_ptr<v1::TaskResult> result,
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
  result_bytes += ApproxBytes(*result);
  results.push_back(std::move(result));
  tasks[index] = v1::Task();  // Frees the text; the task never runs again.
  if (done()) finished_us = now_us;
}

void Job::ReleaseUpTo(uint64_t ticket) {
  while (!unreadable.empty() && unreadable.front().first <= ticket) {
    unreadable.pop_front();
  }
}

v1::StoredJob Job::Summary() const {
  v1::StoredJob summary;
  *summary.mutable_info() = Info();
  summary.set_result_bytes(result_bytes);
  return summary;
}

std::unique_ptr<Job> Job::Store() {
  QFARM_CHECK(readable_done() && !stored)
      << "job " << id << " is not finished and readable, or already stored";
  auto freed = std::make_unique<Job>();
  stored_tasks = static_cast<uint32_t>(entries.size());
  stored = true;
  freed->tasks.swap(tasks);
  freed->entries.swap(entries);
  freed->results.swap(results);
  return freed;
}

void Job::Load(Loaded loaded) {
  QFARM_CHECK(stored && loaded.entries.size() == stored_tasks &&
              loaded.results.size() == stored_tasks)
      << "job " << id << ": " << loaded.results.size() << " results loaded for "
      << stored_tasks << " tasks";
  entries = std::move(loaded.entries);
  results = std::move(loaded.results);
  stored = false;
  journal_order = true;
}

absl::StatusOr<Job::Loaded> LoadResults(const v1::JobInfo& summary,
                                        std::vector<v1::TaskResult> results) {
  const std::string what =
      absl::StrCat("job ", summary.job_id(), "'s results in the journal");
  const size_t n = summary.total();
  if (results.size() != n) {
    return absl::DataLossError(
        absl::StrCat(what, ": ", results.size(), " results for ", n, " tasks"));
  }
  Job::Loaded loaded;
  loaded.entries.resize(n);
  uint32_t counts[v1::TaskState_ARRAYSIZE] = {};
  for (v1::TaskResult& result : results) {
    const uint32_t index = result.index();
    if (index >= n || loaded.entries[index].state != v1::TASK_STATE_QUEUED) {
      return absl::DataLossError(absl::StrCat(what, ": a result for task ",
                                              index, ", past the job's ", n,
                                              " tasks or a second one"));
    }
    if (!IsFinal(result.state())) {
      return absl::DataLossError(
          absl::StrCat(what, ": task ", index, " has state ",
                       TaskStateName(result.state()), ", which is not final"));
    }
    ++counts[result.state()];
    loaded.entries[index] = TaskEntry{.queued_us = result.queued_us(),
                                      .dispatched_us = result.dispatched_us(),
                                      .attempt = result.attempt(),
                                      .state = result.state()};
    loaded.results.push_back(
        std::make_unique<v1::TaskResult>(std::move(result)));
  }
  if (counts[v1::TASK_STATE_OK] != summary.ok() ||
      counts[v1::TASK_STATE_FAILED] != summary.failed() ||
      counts[v1::TASK_STATE_TIMED_OUT] != summary.timed_out() ||
      counts[v1::TASK_STATE_CANCELLED] != summary.cancelled()) {
    return absl::DataLossError(absl::StrCat(
        what, " count ", counts[v1::TASK_STATE_OK], " ok, ",
        counts[v1::TASK_STATE_FAILED], " failed, ",
        counts[v1::TASK_STATE_TIMED_OUT], " timed out and ",
        counts[v1::TASK_STATE_CANCELLED], " cancelled; its summary says ",
        summary.ok(), ", ", summary.failed(), ", ", summary.timed_out(),
        " and ", summary.cancelled()));
  }
  return loaded;
}

namespace {

// The Job a stored job's summary describes.
absl::StatusOr<std::unique_ptr<Job>> RestoreStored(const v1::StoredJob& stored,
                                                   const std::string& what) {
  const v1::JobInfo& info = stored.info();
  const uint64_t counted =
      uint64_t{info.ok()} + info.failed() + info.timed_out() + info.cancelled();
  const bool final = info.state() == v1::JOB_STATE_DONE ||
                     info.state() == v1::JOB_STATE_FAILED ||
                     info.state() == v1::JOB_STATE_CANCELLED;
  if (info.total() == 0 || counted != info.total() || !final ||
      info.queued() != 0 || info.running() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": its summary is not of a finished job (",
                     info.ShortDebugString(), ")"));
  }
  auto job = std::make_unique<Job>();
  job->id = info.job_id();
  job->created_us = info.created_us();
  job->finished_us = info.finished_us();
  job->cancelled = info.state() == v1::JOB_STATE_CANCELLED;
  job->client = info.client();
  job->ok = info.ok();
  job->failed = info.failed();
  job->timed_out = info.timed_out();
  job->cancelled_tasks = info.cancelled();
  job->result_bytes = stored.result_bytes();
  job->stored = true;
  job->stored_tasks = info.total();
  job->summarized = true;
  job->journal_order = true;
  return job;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Job>> RestoreJob(RecoveredJob recovered,
                                                int64_t now_us) {
  const JobId id = recovered.id;
  const std::string what = absl::StrCat("recovered job ", id);
  if (id == 0) return absl::InvalidArgumentError("recovered job id 0");
  if (recovered.stored.has_value()) {
    if (recovered.stored->info().job_id() != id) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has the summary of job ", recovered.stored->info().job_id()));
    }
    return RestoreStored(*recovered.stored, what);
  }
  const size_t n = recovered.tasks.size();
  if (n == 0) return absl::InvalidArgumentError(what + " has no tasks");
  if (n > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", n, " tasks, over the maximum"));
  }
  std::unique_ptr<Job> job =
      Job::Create(id, recovered.created_us, std::move(recovered.tasks));
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
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": result for task ", index, " has state ",
                       TaskStateName(result.state()), ", which is not final"));
    }
    // Job::Finish() copies these back into the result.
    if (result.queued_us() != 0) entry.queued_us = result.queued_us();
    entry.dispatched_us = result.dispatched_us();
    entry.attempt = result.attempt();
    last_finished_us = std::max(last_finished_us, result.finished_us());
    job->Finish(index, std::make_unique<v1::TaskResult>(std::move(result)),
                now_us);
  }
  for (const auto& [index, attempt] : recovered.attempts) {
    if (index >= n) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": attempts for task ", index, ", past its ", n, " tasks"));
    }
    // A task with its final result keeps the attempt of that result.
    TaskEntry& entry = job->entries[index];
    if (entry.state == v1::TASK_STATE_QUEUED) entry.attempt = attempt;
  }
  if (recovered.cancelled) {
    job->cancelled = true;
    for (uint32_t index = 0; index < n; ++index) {
      if (job->entries[index].state != v1::TASK_STATE_QUEUED) continue;
      auto result = std::make_unique<v1::TaskResult>();
      result->set_state(v1::TASK_STATE_CANCELLED);
      result->set_error("job cancelled");
      result->set_finished_us(now_us);
      job->Finish(index, std::move(result), now_us);
      last_finished_us = now_us;
    }
  }
  if (job->done() && last_finished_us != 0) {
    job->finished_us = last_finished_us;
  }
  job->journal_order = true;
  return job;
}

}  // namespace qfarm::coordinator
