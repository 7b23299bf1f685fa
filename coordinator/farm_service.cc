#include "coordinator/farm_service.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "coordinator/call_auth.h"

namespace qfarm::coordinator {
namespace {

// Results per WatchJob message.
constexpr size_t kResultsPerMessage = 4096;

// One WatchJob stream: sends the job's results page by page, woken by the
// router when new ones are recorded; finishes when the job has finished.
class WatchStream final : public grpc::ServerWriteReactor<v1::ResultBatch>,
                          public JobWatcher,
                          public std::enable_shared_from_this<WatchStream> {
 public:
  WatchStream(Scheduler* scheduler, Router* router, JobId job)
      : scheduler_(scheduler), router_(router), job_(job) {}

  void Start() {
    self_ = shared_from_this();
    router_->AddWatcher(job_, shared_from_this());
    Wake();
  }

  void Wake() override {
    absl::Status finish_with;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || done_) return;
      absl::StatusOr<ResultsView> page =
          scheduler_->ViewResults(job_, cursor_, kResultsPerMessage);
      if (!page.ok()) {
        finish_with = page.status();
        done_ = true;
      } else if (page->results.empty()) {
        if (!page->finished) return;  // Wait for the next Wake().
        done_ = true;
      } else {
        cursor_ = page->next_cursor;
        // The scheduler's results are lent to out_ for this write, not
        // copied (see ResultsView); OnWriteDone() takes them back.
        auto* results = out_.mutable_results();
        results->Reserve(static_cast<int>(page->results.size()));
        for (const v1::TaskResult* r : page->results) {
          results->UnsafeArenaAddAllocated(const_cast<v1::TaskResult*>(r));
        }
        writing_ = true;
        StartWrite(&out_);
        return;
      }
    }
    Finish(ToGrpcStatus(finish_with));
  }

  void Close(const absl::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      done_ = true;
      if (writing_) {
        close_status_ = status;
        close_pending_ = true;
        return;
      }
    }
    Finish(ToGrpcStatus(status));
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    absl::Status finish_with;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      ReturnLentLocked();
      if (close_pending_) {
        close_pending_ = false;
        finish = true;
        finish_with = close_status_;
      } else if (!ok) {
        done_ = true;
        finish = true;
        finish_with = absl::UnavailableError("client went away");
      }
    }
    if (finish) {
      Finish(ToGrpcStatus(finish_with));
      return;
    }
    Wake();
  }

  void OnCancel() override { Close(absl::CancelledError("watch cancelled")); }

  void OnDone() override {
    router_->RemoveWatcher(job_, this);
    self_.reset();
  }

  ~WatchStream() override {
    absl::MutexLock lock(&mu_);
    ReturnLentLocked();
  }

 private:
  // Gives the results lent to out_ back to the scheduler, unfreed.
  void ReturnLentLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto* results = out_.mutable_results();
    results->UnsafeArenaExtractSubrange(0, results->size(), nullptr);
  }

  Scheduler* const scheduler_;
  Router* const router_;
  const JobId job_;
  std::shared_ptr<WatchStream> self_;  // Keeps this alive until OnDone().

  absl::Mutex mu_;
  size_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  // Holds only results lent by the scheduler, never its own.
  v1::ResultBatch out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool close_pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
};

// A WatchJob refused before it started.
class RefusedWatch final : public grpc::ServerWriteReactor<v1::ResultBatch> {
 public:
  explicit RefusedWatch(const absl::Status& status) {
    Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace

namespace {

// "ipv4:127.0.0.1:5555" -> "ipv4:127.0.0.1": a client is its address, not
// its connection.
std::string ClientOf(const grpc::CallbackServerContext& context) {
  std::string peer = context.peer();
  const size_t colon = peer.rfind(':');
  if (colon != std::string::npos && colon > peer.find(':')) {
    peer.resize(colon);
  }
  return peer;
}

}  // namespace

absl::Status FarmService::CheckClientJobs(const std::string& client) {
  if (limits_.max_jobs_per_client == 0) return absl::OkStatus();
  absl::MutexLock lock(&clients_mu_);
  std::vector<JobId>& jobs = client_jobs_[client];
  jobs.erase(std::remove_if(jobs.begin(), jobs.end(),
                            [this](JobId id) {
                              absl::StatusOr<v1::JobInfo> info =
                                  scheduler_->GetJob(id);
                              return !info.ok() ||
                                     info->state() != v1::JOB_STATE_RUNNING;
                            }),
             jobs.end());
  if (jobs.size() >= limits_.max_jobs_per_client) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "client ", client, " has ", jobs.size(),
        " unfinished jobs, the most allowed (--max-jobs-per-client=",
        limits_.max_jobs_per_client, "); wait for one to finish"));
  }
  return absl::OkStatus();
}

absl::Status FarmService::Authorize(
    grpc::CallbackServerContext* context) const {
  return auth_->Check(AuthorizationOf(*context), Role::kClient);
}

grpc::ServerUnaryReactor* FarmService::SubmitJob(
    grpc::CallbackServerContext* context, const v1::SubmitJobRequest* request,
    v1::SubmitJobResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status auth = Authorize(context); !auth.ok()) {
    reactor->Finish(ToGrpcStatus(auth));
    return reactor;
  }
  if (static_cast<size_t>(request->tasks_size()) > limits_.max_tasks_per_job) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("tasks: a job of ", request->tasks_size(),
                     " tasks is over the maximum of ",
                     limits_.max_tasks_per_job, " (--max-tasks-per-job)"))));
    return reactor;
  }
  const std::string client = ClientOf(*context);
  if (absl::Status room = CheckClientJobs(client); !room.ok()) {
    reactor->Finish(ToGrpcStatus(room));
    return reactor;
  }
  std::vector<v1::Task> tasks(request->tasks().begin(), request->tasks().end());
  const size_t count = tasks.size();
  Journal* journal = journal_;
  Scheduler::AcceptedHook journal_job;
  if (journal != nullptr) {
    // The reply waits until the job is durable: an accepted job survives a
    // restart.
    journal_job = [journal, reactor, response](
                      JobId id, int64_t created_us,
                      const std::vector<v1::Task>& tasks) {
      // Filled before the append: its callback may run at once.
      response->set_job_id(id);
      response->set_task_count(static_cast<uint32_t>(tasks.size()));
      journal->AppendJob(id, created_us, tasks, [reactor](absl::Status s) {
        reactor->Finish(ToGrpcStatus(s));
      });
    };
  }
  absl::StatusOr<JobId> job =
      scheduler_->SubmitJob(std::move(tasks), journal_job);
  if (!job.ok()) {
    reactor->Finish(ToGrpcStatus(job.status()));
    return reactor;
  }
  if (limits_.max_jobs_per_client > 0) {
    absl::MutexLock lock(&clients_mu_);
    client_jobs_[client].push_back(*job);
  }
  if (journal == nullptr) {
    response->set_job_id(*job);
    response->set_task_count(static_cast<uint32_t>(count));
  }
  router_->Pump();
  if (journal == nullptr) reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<v1::ResultBatch>* FarmService::WatchJob(
    grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) {
  if (absl::Status auth = Authorize(context); !auth.ok()) {
    return new RefusedWatch(auth);
  }
  auto stream =
      std::make_shared<WatchStream>(scheduler_, router_, request->job_id());
  stream->Start();
  return stream.get();
}

grpc::ServerUnaryReactor* FarmService::GetJob(
    grpc::CallbackServerContext* context, const v1::GetJobRequest* request,
    v1::JobInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status auth = Authorize(context); !auth.ok()) {
    reactor->Finish(ToGrpcStatus(auth));
    return reactor;
  }
  absl::StatusOr<v1::JobInfo> info = scheduler_->GetJob(request->job_id());
  if (info.ok()) *response = std::move(*info);
  reactor->Finish(ToGrpcStatus(info.status()));
  return reactor;
}

grpc::ServerUnaryReactor* FarmService::CancelJob(
    grpc::CallbackServerContext* context, const v1::CancelJobRequest* request,
    v1::CancelJobResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status auth = Authorize(context); !auth.ok()) {
    reactor->Finish(ToGrpcStatus(auth));
    return reactor;
  }
  absl::StatusOr<CancelOutcome> outcome =
      scheduler_->CancelJob(request->job_id());
  if (!outcome.ok()) {
    reactor->Finish(ToGrpcStatus(outcome.status()));
    return reactor;
  }
  response->set_cancelled(outcome->cancelled);
  router_->SendCancel(request->job_id(), outcome->workers_to_notify);
  router_->WakeWatchers({request->job_id()});
  if (journal_ != nullptr) {
    // Answered once the cancellation is durable.
    journal_->WhenDurable(
        [reactor](absl::Status s) { reactor->Finish(ToGrpcStatus(s)); });
  } else {
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

grpc::ServerUnaryReactor* FarmService::ListWorkers(
    grpc::CallbackServerContext* context,
    const v1::ListWorkersRequest* /*request*/,
    v1::ListWorkersResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status auth = Authorize(context); !auth.ok()) {
    reactor->Finish(ToGrpcStatus(auth));
    return reactor;
  }
  for (v1::WorkerInfo& info : scheduler_->ListWorkers()) {
    *response->add_workers() = std::move(info);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace qfarm::coordinator
