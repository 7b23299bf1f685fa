#include "client/farm_session.h"

#include <utility>

#include "client/gather.h"
#include "common/auth.h"
#include "common/grpc_status.h"
#include "common/task_table.h"

namespace qfarm::client {

FarmSession::FarmSession(std::shared_ptr<v1::Farm::StubInterface> stub,
                         const std::string& token) {
  if (!token.empty()) {
    context_.AddMetadata("authorization", BearerHeader(token));
  }
  stream_ = stub->Session(&context_);
}

FarmSession::~FarmSession() {
  {
    absl::MutexLock lock(&mu_);
    if (ended_.has_value()) return;
  }
  context_.TryCancel();
  const absl::Status status = FinishStream();
  absl::MutexLock lock(&mu_);
  EndJobs(status);
}

absl::StatusOr<std::vector<v1::TaskResult>> FarmSession::Run(
    const std::vector<v1::Task>& tasks) {
  return GatherInOrder(tasks.size(), [&](const ResultCallback& on_result) {
    return RunAsCompleted(tasks, on_result);
  });
}

absl::Status FarmSession::RunAsCompleted(
    const std::vector<v1::Task>& tasks,
    const std::function<void(v1::TaskResult&&)>& on_result,
    const std::function<void(uint64_t job_id)>& on_accepted) {
  v1::SessionRequest request;
  AppendTasksByKindIndex(tasks, *request.mutable_tasks(),
                         *request.mutable_kinds());
  uint64_t tag;
  {
    absl::MutexLock lock(&mu_);
    if (ended_.has_value()) {
      return ended_->ok() ? absl::FailedPreconditionError("session is closed")
                          : *ended_;
    }
    tag = next_tag_++;
    jobs_[tag];
  }
  request.set_tag(tag);
  bool written;
  {
    absl::MutexLock lock(&write_mu_);
    written = !writes_done_ && stream_->Write(request);
  }
  // A failed write means the call is over; the read side says why.

  bool told_id = on_accepted == nullptr;
  while (true) {
    std::vector<v1::TaskResult> pending;
    uint64_t accepted = 0;
    std::optional<absl::Status> finished;
    bool read = false;
    {
      absl::MutexLock lock(&mu_);
      Job* job = &jobs_[tag];
      auto ready = [this, job, &told_id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !job->pending.empty() || job->done.has_value() || !reading_ ||
               (!told_id && job->job_id != 0);
      };
      mu_.Await(absl::Condition(&ready));
      if (!told_id && job->job_id != 0) {
        accepted = job->job_id;
        told_id = true;
      }
      if (!job->pending.empty()) {
        pending.swap(job->pending);
      } else if (job->done.has_value()) {
        finished = *std::move(job->done);
        jobs_.erase(tag);
      } else if (!written && ended_.has_value()) {
        finished =
            ended_->ok() ? absl::UnavailableError("session ended") : *ended_;
        jobs_.erase(tag);
      } else if (!reading_) {
        reading_ = true;  // This thread reads for every job.
        read = true;
      }
    }
    if (accepted != 0) on_accepted(accepted);
    if (finished.has_value()) return *std::move(finished);
    if (read) ReadOne();
    for (v1::TaskResult& result : pending) on_result(std::move(result));
  }
}

void FarmSession::ReadOne() {
  const bool ok = stream_->Read(&response_);
  // The call is over: its status, without holding mu_ through the blocking
  // Finish(). Only the reading thread gets here, so it finishes once.
  const absl::Status ended = ok ? absl::OkStatus() : FinishStream();
  absl::MutexLock lock(&mu_);
  reading_ = false;
  if (!ok) {
    EndJobs(ended);
    return;
  }
  auto it = jobs_.find(response_.tag());
  if (it == jobs_.end()) return;  // Not ours (any more): ignore.
  Job& job = it->second;
  if (response_.job_id() != 0) job.job_id = response_.job_id();
  for (v1::TaskResult& result : *response_.mutable_results()) {
    job.pending.push_back(std::move(result));
  }
  if (response_.has_error()) {
    job.done = FromRpcStatus(response_.error());
  } else if (response_.finished()) {
    job.done = absl::OkStatus();
  }
  response_.Clear();
}

absl::Status FarmSession::FinishStream() {
  absl::MutexLock lock(&write_mu_);
  writes_done_ = true;
  return FromGrpcStatus(stream_->Finish());
}

void FarmSession::EndJobs(const absl::Status& status) {
  if (ended_.has_value()) return;
  ended_ = status;
  const absl::Status failed =
      status.ok()
          ? absl::UnavailableError("session ended before the job finished")
          : status;
  for (auto& [tag, job] : jobs_) {
    if (!job.done.has_value()) job.done = failed;
  }
}

absl::Status FarmSession::Close() {
  {
    absl::MutexLock lock(&write_mu_);
    if (!writes_done_) {
      writes_done_ = true;
      stream_->WritesDone();
    }
  }
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // A Run() still waiting may be reading: only one Read() at a time.
      auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return ended_.has_value() || !reading_;
      };
      mu_.Await(absl::Condition(&free));
      if (ended_.has_value()) return *ended_;
      reading_ = true;
    }
    ReadOne();
  }
}

}  // namespace qfarm::client
