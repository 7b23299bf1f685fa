#include "coordinator/farm_service.h"

#include <grpc/grpc_security_constants.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "coordinator/call_auth.h"
#include "coordinator/lent_results.h"
#include "coordinator/session_stream.h"
#include "coordinator/stream_reactor.h"

namespace qfarm::coordinator {
namespace {

using WatchReactor = grpc::ServerWriteReactor<v1::ResultBatch>;

// One WatchJob stream: sends the job's results page by page, woken by the
// router when new ones are recorded; finishes when the job has finished.
class WatchStream final : public ServerStream<WatchReactor, v1::ResultBatch>,
                          public JobWatcher,
                          public std::enable_shared_from_this<WatchStream> {
 public:
  // Starts after the first `resume_after` results when `resume_epoch`
  // names the order the job's results are in: `epoch` for the order this
  // process recorded them in, `epoch` + 1 for the journal's (see
  // ResultsView::journal_order).
  WatchStream(Scheduler* scheduler, Router* router, JobId job, uint64_t epoch,
              uint64_t resume_epoch, size_t resume_after)
      : scheduler_(scheduler),
        router_(router),
        job_(job),
        process_epoch_(epoch),
        resume_epoch_(resume_epoch),
        resume_after_(resume_after) {}

  void Start() {
    StreamBirth::Published();
    self_ = shared_from_this();
    // The results lent to a message stay valid until the stream is done.
    held_ = scheduler_->HoldJob(job_);
    router_->AddWatcher(job_, shared_from_this());
    Pump();
  }

  void Wake() override { Pump(); }
  void Close(const absl::Status& status) override { WriteLoop::Close(status); }
  void OnCancel() override {
    StreamBirth::Seen();
    Close(absl::CancelledError("watch cancelled"));
  }

  void OnDone() override {
    StreamBirth::Seen();
    router_->RemoveWatcher(job_, this);
    if (held_) scheduler_->UnholdJob(job_);
    self_.reset();
  }

 protected:
  Fill FillNext(v1::ResultBatch* out, absl::Status* finish) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!started_) {
      // The order of the results (loading a stored job back): held, the
      // job keeps it while the stream lasts.
      absl::StatusOr<ResultsView> head = scheduler_->ViewResults(job_, 0, 0);
      if (!head.ok()) {
        *finish = head.status();
        return Fill::kFinish;
      }
      epoch_ = head->journal_order ? process_epoch_ + 1 : process_epoch_;
      cursor_ = resume_epoch_ == epoch_ ? resume_after_ : 0;
      started_ = true;
    }
    absl::StatusOr<ResultsView> page =
        scheduler_->ViewResults(job_, cursor_, kResultsPerMessage);
    if (!page.ok()) {
      *finish = page.status();
      return Fill::kFinish;
    }
    if (page->results.empty()) {
      // Wait for the next Wake().
      return page->finished ? Fill::kFinish : Fill::kIdle;
    }
    cursor_ = page->next_cursor;
    lent_.Lend(page->results, out->mutable_results());
    out->set_epoch(epoch_);
    return Fill::kMessage;
  }

  void OnSent(v1::ResultBatch* /*sent*/) override { lent_.Return(); }
  absl::Status WriteFailedStatus() const override {
    return absl::UnavailableError("client went away");
  }

 private:
  Scheduler* const scheduler_;
  Router* const router_;
  const JobId job_;
  const uint64_t process_epoch_;
  const uint64_t resume_epoch_;
  const size_t resume_after_;
  // Set by Start(), read by OnDone().
  bool held_ = false;
  std::shared_ptr<WatchStream> self_;  // Keeps this alive until OnDone().
  // The first FillNext() sets these.
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  size_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  // Results lent to the message being written; returned before the next.
  LentResults lent_;
};

uint64_t RandomEpoch() {
  std::random_device random;
  return (uint64_t{random()} << 32) | random();
}

// ListJobs' page sizes.
constexpr uint32_t kDefaultJobsPage = 100;
constexpr uint32_t kMaxJobsPage = 1000;
// Jobs one ListJobs call looks at, however few match its filter.
constexpr size_t kMaxJobsScanned = 10'000;

}  // namespace

Caller CallerOf(const grpc::CallbackServerContext& context) {
  // "ipv4:127.0.0.1:5555" -> "ipv4:127.0.0.1": a client is its address, not
  // its connection.
  Caller caller{.address = context.peer()};
  const size_t colon = caller.address.rfind(':');
  if (colon != std::string::npos && colon > caller.address.find(':')) {
    caller.address.resize(colon);
  }
  caller.name = caller.address;
  if (const std::shared_ptr<const grpc::AuthContext> auth =
          context.auth_context();
      auth != nullptr && auth->IsPeerAuthenticated()) {
    const std::vector<grpc::string_ref> names =
        auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
    if (!names.empty()) {
      caller.name = absl::StrCat(
          "cn:", absl::string_view(names[0].data(), names[0].size()));
    }
  }
  return caller;
}

FarmService::FarmService(Scheduler* scheduler, Router* router,
                         const TokenAuth* auth)
    : scheduler_(scheduler),
      router_(router),
      auth_(auth),
      epoch_(RandomEpoch()) {
  SetLimits(Limits());
}

void FarmService::SetLimits(const Limits& limits) {
  limits_ = limits;
  Scheduler* scheduler = scheduler_;
  quota_ = std::make_unique<ClientQuota>(
      limits.max_jobs_per_client, [scheduler](std::vector<JobId> jobs) {
        return scheduler->Unfinished(std::move(jobs));
      });
}

absl::Status FarmService::Authorize(
    grpc::CallbackServerContext* context) const {
  return auth_->Check(AuthorizationOf(*context), Role::kClient);
}

absl::Status FarmService::CheckTaskCount(size_t count) const {
  if (count <= limits_.max_tasks_per_job) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("tasks: a job of ", count, " tasks is over the maximum of ",
                   limits_.max_tasks_per_job, " (--max-tasks-per-job)"));
}

absl::StatusOr<JobId> FarmService::AcceptJob(
    const Caller& caller, std::vector<v1::Task> tasks,
    const std::vector<std::string>& kinds, DurableCallback durable, bool hold) {
  RETURN_IF_ERROR(CheckTaskCount(tasks.size()));
  const std::string& client = caller.address;
  RETURN_IF_ERROR(quota_->Reserve(client));
  JobJournal* journal = journal_;
  Scheduler::AcceptedHook journal_job;
  std::string encoded;
  if (journal != nullptr) {
    // Encoded here, without the scheduler's lock: a large job's encoding
    // would hold up every other client and worker.
    encoded = journal->EncodeJob(tasks, kinds);
    // The job is journaled before any of its tasks can run; `durable` runs
    // on the journal's thread once it is on disk. (The journal calls back
    // at once only when closed, and it closes after the server stopped.)
    journal_job = [journal, &durable, &encoded](JobId id, int64_t created_us) {
      journal->AppendJob(id, created_us, std::move(encoded),
                         [durable = std::move(durable), id](absl::Status s) {
                           durable(id, std::move(s));
                         });
    };
  }
  absl::StatusOr<JobId> job = scheduler_->SubmitJob(
      std::move(tasks), kinds, journal_job, caller.name, hold);
  if (!job.ok()) {
    quota_->Cancel(client);
    return job.status();
  }
  quota_->Commit(client, *job);
  router_->Pump();
  if (journal == nullptr) durable(*job, absl::OkStatus());
  return *job;
}

grpc::ServerUnaryReactor* FarmService::SubmitJob(
    grpc::CallbackServerContext* context, const v1::SubmitJobRequest* request,
    v1::SubmitJobResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status auth = Authorize(context); !auth.ok()) {
    reactor->Finish(ToGrpcStatus(auth));
    return reactor;
  }
  // Checked before the copy, too: a huge job is refused cheaply.
  if (absl::Status count = CheckTaskCount(request->tasks_size()); !count.ok()) {
    reactor->Finish(ToGrpcStatus(count));
    return reactor;
  }
  std::vector<v1::Task> tasks(request->tasks().begin(), request->tasks().end());
  const auto count = static_cast<uint32_t>(tasks.size());
  // The reply waits until the job is durable: an accepted job survives a
  // restart.
  const std::vector<std::string> kinds(request->kinds().begin(),
                                       request->kinds().end());
  absl::StatusOr<JobId> job = AcceptJob(
      CallerOf(*context), std::move(tasks), kinds,
      [reactor, response, count](JobId id, const absl::Status& durable) {
        response->set_job_id(id);
        response->set_task_count(count);
        reactor->Finish(ToGrpcStatus(durable));
      });
  if (!job.ok()) reactor->Finish(ToGrpcStatus(job.status()));
  return reactor;
}

grpc::ServerWriteReactor<v1::ResultBatch>* FarmService::WatchJob(
    grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) {
  if (absl::Status auth = Authorize(context); !auth.ok()) {
    return new Refused<WatchReactor>(auth);
  }
  // A resume point of another process, or of the other order of a job's
  // results, is ignored: the results may come back in another order, so all
  // are sent again.
  auto stream = std::make_shared<WatchStream>(
      scheduler_, router_, request->job_id(), epoch_, request->resume_epoch(),
      request->resume_after());
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
        [reactor](const absl::Status& s) { reactor->Finish(ToGrpcStatus(s)); });
  } else {
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse>*
FarmService::Session(grpc::CallbackServerContext* context) {
  if (absl::Status auth = Authorize(context); !auth.ok()) {
    return new Refused<SessionReactor>(auth);
  }
  return StartSession(this, CallerOf(*context));
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

grpc::ServerUnaryReactor* FarmService::ListJobs(
    grpc::CallbackServerContext* context, const v1::ListJobsRequest* request,
    v1::ListJobsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status auth = Authorize(context); !auth.ok()) {
    reactor->Finish(ToGrpcStatus(auth));
    return reactor;
  }
  if (!v1::JobState_IsValid(request->state())) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("state: ", request->state(), " is not a JobState"))));
    return reactor;
  }
  // A token is good only for the filter it was issued for.
  const auto query = static_cast<uint32_t>(request->state());
  JobId before = 0;
  if (!request->page_token().empty()) {
    absl::StatusOr<uint64_t> read =
        page_tokens_.Read(request->page_token(), query);
    if (!read.ok() || *read == 0) {
      reactor->Finish(ToGrpcStatus(
          read.ok() ? absl::InvalidArgumentError("page_token: no position")
                    : read.status()));
      return reactor;
    }
    before = *read;
  }
  const uint32_t page_size = request->page_size() == 0
                                 ? kDefaultJobsPage
                                 : std::min(request->page_size(), kMaxJobsPage);
  Scheduler::JobsPage page = scheduler_->ListJobs(request->state(), before,
                                                  page_size, kMaxJobsScanned);
  response->set_as_of_us(page.as_of_us);
  response->mutable_jobs()->Reserve(static_cast<int>(page.jobs.size()));
  for (v1::JobInfo& info : page.jobs) {
    *response->add_jobs() = std::move(info);
  }
  if (page.next_before != 0) {
    response->set_next_page_token(page_tokens_.Issue(query, page.next_before));
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace qfarm::coordinator
