#include "coordinator/session_stream.h"

#include <atomic>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "coordinator/lent_results.h"
#include "coordinator/router.h"
#include "coordinator/stream_reactor.h"

namespace qfarm::coordinator {
namespace {

// One Session call: reads jobs, submits each, and streams every job's
// results back, one message at a time, tagged with the client's tag.
class SessionStream final
    : public ServerStream<SessionReactor, v1::SessionResponse>,
      public std::enable_shared_from_this<SessionStream> {
 public:
  SessionStream(FarmService* service, Caller caller)
      : service_(service), caller_(std::move(caller)) {}

  void Start() {
    StreamBirth::Published();
    self_ = shared_from_this();
    read_handoff_.Start([this] { StartRead(&request_); });
  }

  void OnReadDone(bool ok) override {
    read_handoff_.Arrived();
    if (!ok) {  // The client half-closed (or the call ended).
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
      }
      Pump();
      return;
    }
    if (closing()) return;  // The call is ending (cancelled, shutdown).
    if (Accept() && !closing()) {
      read_handoff_.Start([this] { StartRead(&request_); });
    }
    Pump();
  }

  void OnCancel() override {
    StreamBirth::Seen();
    Close(absl::CancelledError("session cancelled"));
  }

  // Starts the read that a full refusal queue held back, once the write
  // that made room completed: in a reaction, so never after OnDone().
  void OnWriteDone(bool ok) override {
    StreamBirth::Seen();
    // Set by the FillNext() of this write; read before WriteDone() fills
    // the next.
    if (read_after_write_.exchange(false, std::memory_order_acq_rel) && ok &&
        !closing()) {
      read_handoff_.Start([this] { StartRead(&request_); });
    }
    WriteDone(ok);
  }

  void OnDone() override {
    StreamBirth::Seen();
    std::vector<std::pair<JobId, std::shared_ptr<JobWatcher>>> watchers;
    std::vector<JobId> held;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, job] : jobs_) {
        watchers.emplace_back(id, job.watcher);
        held.push_back(id);
      }
      jobs_.clear();
      held.insert(held.end(), sent_last_.begin(), sent_last_.end());
      sent_last_.clear();
      SessionGauges& gauges = service_->session_gauges();
      gauges.queued_refusals -= static_cast<int64_t>(refusals_.size());
      refusals_.clear();
      if (read_paused_) --gauges.paused_reads;
      read_paused_ = false;
    }
    for (auto& [id, watcher] : watchers) {
      service_->router()->RemoveWatcher(id, watcher.get());
    }
    for (JobId id : held) service_->scheduler()->UnholdJob(id);
    self_.reset();
  }

 protected:
  // The first job with something to say, in submission order, or a refusal;
  // finishes the call once the client half-closed and every job ended.
  Fill FillNext(v1::SessionResponse* out, absl::Status* /*finish*/) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    out->Clear();
    if (!refusals_.empty()) {
      SetError(out, refusals_.front().tag, refusals_.front().status);
      refusals_.pop_front();
      --service_->session_gauges().queued_refusals;
      if (read_paused_ && refusals_.size() < kMaxQueuedRefusals) {
        read_paused_ = false;
        --service_->session_gauges().paused_reads;
        // The read starts when this message's write completes.
        read_after_write_.store(true, std::memory_order_release);
      }
      return Fill::kMessage;
    }
    if (NextJobMessage(out)) return Fill::kMessage;
    return reads_done_ && jobs_.empty() ? Fill::kFinish : Fill::kIdle;
  }

  // Once a job's last message is written, its results are no longer lent:
  // the job may be released.
  void OnSent(v1::SessionResponse* /*sent*/) override {
    lent_.Return();
    std::vector<JobId> done;
    {
      absl::MutexLock lock(&mu_);
      done.swap(sent_last_);
    }
    for (JobId id : done) service_->scheduler()->UnholdJob(id);
  }
  absl::Status WriteFailedStatus() const override {
    return absl::UnavailableError("client went away");
  }

  // Removes the watchers of jobs that ended from the router.
  void AfterUnlock() override {
    // Set by the thread that filled a job's last message, which calls this
    // next: no lock taken when no job ended.
    if (!watchers_ended_.exchange(false, std::memory_order_acq_rel)) return;
    std::vector<std::pair<JobId, std::shared_ptr<JobWatcher>>> ended;
    {
      absl::MutexLock lock(&mu_);
      ended.swap(ended_watchers_);
    }
    for (auto& [id, watcher] : ended) {
      service_->router()->RemoveWatcher(id, watcher.get());
    }
  }

 private:
  // Wakes the session for one of its jobs (held by the router).
  class Wakeup final : public JobWatcher {
   public:
    Wakeup(std::weak_ptr<SessionStream> session, JobId job)
        : session_(std::move(session)), job_(job) {}
    void Wake() override {
      if (auto s = session_.lock()) s->WakeJob(job_);
    }
    void Close(const absl::Status& status) override {
      if (auto s = session_.lock()) s->Close(status);
    }

   private:
    const std::weak_ptr<SessionStream> session_;
    const JobId job_;
  };

  struct Job {
    uint64_t tag = 0;
    std::shared_ptr<JobWatcher> watcher;
    // Set once the job is journaled (at once without a journal).
    std::optional<absl::Status> durable;
    bool acknowledged = false;  // A response with its id was sent.
    bool dirty = true;          // May have results not read yet.
    size_t cursor = 0;
  };
  struct Refusal {
    uint64_t tag;
    absl::Status status;
  };

  // Submits the job in request_ and registers its watcher, or queues its
  // refusal. Returns whether to read the next request: false when the
  // refusals fill their bound (FillNext() restarts reading).
  bool Accept() {
    const uint64_t tag = request_.tag();
    std::vector<v1::Task> tasks;
    tasks.reserve(static_cast<size_t>(request_.tasks_size()));
    for (v1::Task& task : *request_.mutable_tasks()) {
      tasks.push_back(std::move(task));
    }
    std::vector<std::string> kinds;
    kinds.reserve(static_cast<size_t>(request_.kinds_size()));
    for (std::string& kind : *request_.mutable_kinds()) {
      kinds.push_back(std::move(kind));
    }
    request_.Clear();
    std::weak_ptr<SessionStream> weak = weak_from_this();
    // Accepted held: the session reads its results until its last message
    // is sent (OnSent()).
    absl::StatusOr<JobId> job = service_->AcceptJob(
        caller_, std::move(tasks), kinds,
        [weak](JobId id, absl::Status durable) {
          if (auto self = weak.lock()) self->Durable(id, std::move(durable));
        },
        /*hold=*/true);
    if (!job.ok()) {
      absl::MutexLock lock(&mu_);
      refusals_.push_back({tag, job.status()});
      ++service_->session_gauges().queued_refusals;
      if (refusals_.size() < kMaxQueuedRefusals) return true;
      // Too many refusals wait for a client that does not read: read again
      // once FillNext() has sent one.
      read_paused_ = true;
      ++service_->session_gauges().paused_reads;
      return false;
    }
    auto watcher = std::make_shared<Wakeup>(weak, *job);
    {
      absl::MutexLock lock(&mu_);
      Job& entry = jobs_[*job];
      entry.tag = tag;
      entry.watcher = watcher;
      order_.push_back(*job);
      if (auto it = durable_.find(*job); it != durable_.end()) {
        entry.durable = std::move(it->second);
        durable_.erase(it);
      }
    }
    service_->router()->AddWatcher(*job, watcher);
    // A Pump (on the journal's thread) may have read the job before the
    // watcher was in place, and missed the wake-up of a result that got
    // readable in between: read it again. If that Pump already sent the
    // job's last response, the watcher it removed was not there yet.
    bool ended;
    {
      absl::MutexLock lock(&mu_);
      auto it = jobs_.find(*job);
      ended = it == jobs_.end();
      if (!ended) it->second.dirty = true;
    }
    if (ended) service_->router()->RemoveWatcher(*job, watcher.get());
    return true;
  }

  void Durable(JobId id, absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      auto it = jobs_.find(id);
      if (it == jobs_.end()) {
        durable_[id] = std::move(status);  // Before Accept() knew the id.
        return;
      }
      it->second.durable = std::move(status);
    }
    Pump();
  }

  void WakeJob(JobId id) {
    {
      absl::MutexLock lock(&mu_);
      auto it = jobs_.find(id);
      if (it == jobs_.end()) return;
      it->second.dirty = true;
    }
    Pump();
  }

  // Fills `out` for the first job, in submission order, with something to
  // say; false when none has. A job that ends is dropped and its watcher
  // kept for AfterUnlock() to remove from the router.
  bool NextJobMessage(v1::SessionResponse* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto it = order_.begin(); it != order_.end();) {
      auto found = jobs_.find(*it);
      if (found == jobs_.end()) {
        it = order_.erase(it);
        continue;
      }
      const JobId id = *it;
      Job& job = found->second;
      if (!job.durable.has_value() || (!job.dirty && job.acknowledged)) {
        ++it;
        continue;
      }
      bool ends = false;
      if (!job.durable->ok()) {
        SetError(out, job.tag, *job.durable);
        ends = true;
      } else {
        absl::StatusOr<ResultsView> page = service_->scheduler()->ViewResults(
            id, job.cursor, kResultsPerMessage);
        if (!page.ok()) {
          SetError(out, job.tag, page.status());
          ends = true;
        } else {
          job.cursor = page->next_cursor;
          // A full page may leave more behind.
          job.dirty = page->results.size() == kResultsPerMessage;
          if (page->results.empty() && !page->finished && job.acknowledged) {
            ++it;
            continue;
          }
          out->set_tag(job.tag);
          out->set_job_id(id);
          lent_.Lend(page->results, out->mutable_results());
          job.acknowledged = true;
          if (page->finished) {
            out->set_finished(true);
            ends = true;
          }
        }
      }
      if (ends) {
        sent_last_.push_back(id);
        ended_watchers_.emplace_back(id, std::move(job.watcher));
        watchers_ended_.store(true, std::memory_order_release);
        jobs_.erase(found);
        order_.erase(it);
      } else {
        // Later jobs go first next time: one busy job does not starve them.
        order_.splice(order_.end(), order_, it);
      }
      return true;
    }
    return false;
  }

  static void SetError(v1::SessionResponse* out, uint64_t tag,
                       const absl::Status& status) {
    out->set_tag(tag);
    *out->mutable_error() = ToRpcStatus(status);
  }

  FarmService* const service_;
  const Caller caller_;
  std::shared_ptr<SessionStream> self_;  // Keeps this alive until OnDone().
  v1::SessionRequest request_;           // Only touched by the read reactions.
  Handoff read_handoff_;

  absl::flat_hash_map<JobId, Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::list<JobId> order_ ABSL_GUARDED_BY(mu_);  // Of jobs_, to send in turn.
  // Durable callbacks that came before AcceptJob() returned the id.
  absl::flat_hash_map<JobId, absl::Status> durable_ ABSL_GUARDED_BY(mu_);
  // At most kMaxQueuedRefusals: reading pauses at the bound.
  std::deque<Refusal> refusals_ ABSL_GUARDED_BY(mu_);
  // No read is in flight: the refusals fill their bound.
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  // FillNext() made room: OnWriteDone() of the write starts the next read.
  std::atomic<bool> read_after_write_{false};
  // Watchers of jobs that ended, for AfterUnlock() to remove.
  std::vector<std::pair<JobId, std::shared_ptr<JobWatcher>>> ended_watchers_
      ABSL_GUARDED_BY(mu_);
  std::atomic<bool> watchers_ended_{false};
  // Jobs whose last message is the one being written: held (see
  // Scheduler::HoldJob()) until it is.
  std::vector<JobId> sent_last_ ABSL_GUARDED_BY(mu_);
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  // Results lent to the message being written; returned before the next.
  LentResults lent_;
};

}  // namespace

SessionReactor* StartSession(FarmService* service, Caller caller) {
  auto stream = std::make_shared<SessionStream>(service, std::move(caller));
  stream->Start();
  return stream.get();
}

}  // namespace qfarm::coordinator
