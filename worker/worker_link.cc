#include "worker/worker_link.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/auth.h"
#include "common/grpc_options.h"
#include "common/logging.h"
#include "executors/kind_runner.h"
#include "qfarm/v1/worker_link.grpc.pb.h"

namespace qfarm::worker {

// One stream to the coordinator and its writer thread.
class WorkerLink::Connection {
 public:
  explicit Connection(WorkerLink* link) : link_(link) {}

  // Serves the stream until it ends. Returns true when the coordinator
  // welcomed this worker (so the backoff may reset).
  bool Serve() {
    auto channel = link_->options_.credentials != nullptr
                       ? MakeChannel(link_->options_.coordinator,
                                     link_->options_.credentials)
                       : MakeChannel(link_->options_.coordinator);
    auto stub = v1::WorkerLink::NewStub(channel);
    if (!link_->options_.token.empty()) {
      context_.AddMetadata("authorization",
                           BearerHeader(link_->options_.token));
    }
    stream_ = stub->Connect(&context_);

    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(link_->options_.id);
    hello.mutable_hello()->set_mode(
        std::string(executors::ModeName(link_->options_.mode)));
    hello.mutable_hello()->set_slots(
        static_cast<uint32_t>(link_->options_.slots));
    for (const std::string& kind : link_->kind_names_) {
      hello.mutable_hello()->add_kinds(kind);
    }
    {
      absl::MutexLock lock(&link_->mu_);
      // Results of tasks from an earlier connection are void: the
      // coordinator re-queued those tasks when that stream ended.
      link_->pending_.Clear();
      link_->pending_credits_ = 0;
      ++link_->generation_;
      if (!link_->stopping_) {
        hello.set_credits(static_cast<uint32_t>(
            std::max(0, link_->options_.slots - link_->in_flight_)));
      }
      link_->connection_ = this;
    }
    bool welcomed = false;
    if (stream_->Write(hello)) {
      std::thread writer([this] { WriteLoop(); });
      v1::CoordinatorMessage message;
      while (stream_->Read(&message)) {
        if (message.has_welcome()) {
          welcomed = true;
          if (link_->options_.liveness != nullptr) {
            link_->options_.liveness->SetConnected(true);
          }
          if (message.welcome().heartbeat_interval_ms() > 0) {
            absl::MutexLock lock(&link_->mu_);
            heartbeat_interval_ =
                absl::Milliseconds(message.welcome().heartbeat_interval_ms());
            interval_changed_ = true;  // The writer's wait uses the old one.
          }
          QFARM_LOG(INFO) << "connected to " << link_->options_.coordinator
                          << " as " << message.welcome().worker_id();
        } else if (message.has_tasks()) {
          RunTasks(message.mutable_tasks());
        } else if (message.has_cancel()) {
          for (uint64_t job : message.cancel().job_ids()) {
            link_->executor_->CancelJob(job);
          }
        }
      }
      {
        absl::MutexLock lock(&link_->mu_);
        read_done_ = true;
      }
      writer.join();
    }
    {
      absl::MutexLock lock(&link_->mu_);
      link_->connection_ = nullptr;
    }
    if (link_->options_.liveness != nullptr) {
      link_->options_.liveness->SetConnected(false);
    }
    grpc::Status status = stream_->Finish();
    if (!status.ok()) {
      QFARM_LOG(WARNING) << "stream to " << link_->options_.coordinator
                         << " ended: " << status.error_message();
    }
    return welcomed;
  }

 private:
  void RunTasks(v1::TaskBatch* batch) {
    auto& assignments = *batch->mutable_assignments();
    {
      absl::MutexLock lock(&link_->mu_);
      link_->in_flight_ += assignments.size();
      link_->in_flight_generation_.reserve(link_->in_flight_generation_.size() +
                                           assignments.size());
      uint64_t job = 0;
      int* job_count = nullptr;
      size_t kind = 0;
      for (const v1::Assignment& a : assignments) {
        // Batches hold runs of one job: one lookup per run.
        if (job_count == nullptr || a.job_id() != job) {
          job = a.job_id();
          job_count = &link_->in_flight_jobs_[job];
        }
        ++*job_count;
        kind = link_->KindIndex(a.task(), kind);
        link_->in_flight_generation_[{a.job_id(), a.index(), a.attempt()}] = {
            link_->generation_, kind};
      }
    }
    // One SubmitBatch: one lock and one wake-up of the executor.
    std::vector<v1::Assignment> tasks;
    tasks.reserve(static_cast<size_t>(assignments.size()));
    for (v1::Assignment& a : assignments) tasks.push_back(std::move(a));
    link_->executor_->SubmitBatch(std::move(tasks));
  }

  // Sends results and credits as they come, many to a message; on Stop()
  // closes the stream once in-flight tasks are done or the grace has passed.
  // When idle for a heartbeat interval, sends a heartbeat, so the
  // coordinator can tell an idle worker from a wedged one.
  void WriteLoop() {
    // link_ spelled out (no alias), so clang can match the lock to the
    // guarded fields.
    Clock* clock = link_->options_.clock;
    Liveness* liveness = link_->options_.liveness;
    absl::Time last_write = clock->Now();
    // Reused: its results, cleared after each write, go back to pending_ to
    // be filled again.
    v1::WorkerMessage message;
    auto* results = message.mutable_results()->mutable_results();
    while (true) {
      results->Clear();
      message.set_credits(0);
      bool close = false;
      bool heartbeat = false;
      {
        absl::MutexLock lock(&link_->mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(link_->mu_) {
          return read_done_ || interval_changed_ || !link_->pending_.empty() ||
                 link_->pending_credits_ > 0 ||
                 (link_->stopping_ && link_->in_flight_ == 0);
        };
        absl::Time deadline = last_write + heartbeat_interval_;
        if (link_->stopping_)
          deadline = std::min(deadline, link_->stop_deadline_);
        if (liveness != nullptr) {
          deadline = std::min(deadline, clock->Now() + kLivenessTick);
        }
        const bool woke = clock->AwaitWithDeadline(
            &link_->mu_, absl::Condition(&ready), deadline);
        if (liveness != nullptr) liveness->Tick();
        if (read_done_) return;
        interval_changed_ = false;
        heartbeat = !woke && clock->Now() >= last_write + heartbeat_interval_;
        if (link_->stopping_ &&
            (link_->in_flight_ == 0 || clock->Now() >= link_->stop_deadline_)) {
          close = true;
        }
        results->Swap(&link_->pending_);
        if (!link_->stopping_) message.set_credits(link_->pending_credits_);
        link_->pending_credits_ = 0;
      }
      if (message.results().results_size() > 0 || message.credits() > 0) {
        if (!stream_->Write(message)) return;
        last_write = clock->Now();
      } else if (heartbeat) {
        v1::WorkerMessage beat;
        beat.mutable_heartbeat();
        if (!stream_->Write(beat)) return;
        last_write = clock->Now();
      }
      if (close) {
        stream_->WritesDone();
        // The coordinator ends the stream when it sees ours end; do not
        // wait for it forever.
        absl::MutexLock lock(&link_->mu_);
        if (!link_->mu_.AwaitWithTimeout(absl::Condition(&read_done_),
                                         absl::Seconds(2))) {
          context_.TryCancel();
        }
        return;
      }
    }
  }

  WorkerLink* const link_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>>
      stream_;
  bool read_done_ ABSL_GUARDED_BY(link_->mu_) = false;
  // From the welcome; until then a safe default.
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(link_->mu_) =
      absl::Seconds(2);
  // Set when the welcome changes heartbeat_interval_, to restart the
  // writer's wait with it.
  bool interval_changed_ ABSL_GUARDED_BY(link_->mu_) = false;

  friend class WorkerLink;
};

WorkerLink::WorkerLink(WorkerOptions options)
    : options_(std::move(options)),
      kinds_(options_.kinds != nullptr ? *options_.kinds
                                       : executors::BuiltInKinds()),
      kind_names_(kinds_.names()),
      finished_(kind_names_.size() + 1) {
  executor_ = executors::MakeExecutor({.mode = options_.mode,
                                       .slots = options_.slots,
                                       .worker_name = options_.id,
                                       .sink = this,
                                       .kinds = &kinds_});
}

size_t WorkerLink::KindIndexOfName(const std::string& kind, size_t hint) const {
  if (hint < kind_names_.size() && kind_names_[hint] == kind) return hint;
  auto it = std::lower_bound(kind_names_.begin(), kind_names_.end(), kind);
  if (it == kind_names_.end() || *it != kind) return kind_names_.size();
  return static_cast<size_t>(it - kind_names_.begin());
}

WorkerLink::~WorkerLink() { executor_->Shutdown(); }

void WorkerLink::OnResult(v1::TaskResult result) {
  absl::MutexLock lock(&mu_);
  const bool current = FinishLocked(result);
  if (connection_ == nullptr) return;  // Void: see Connection::Serve().
  // A task of an earlier connection frees a slot but has no result to give.
  if (current) pending_.Add(std::move(result));
  ++pending_credits_;
}

void WorkerLink::OnResults(std::vector<v1::TaskResult>& results) {
  absl::MutexLock lock(&mu_);
  for (v1::TaskResult& result : results) {
    const bool current = FinishLocked(result);
    if (connection_ == nullptr) continue;  // Void: see Connection::Serve().
    // Add() reuses a cleared message; the swap hands its allocations back.
    if (current) pending_.Add()->Swap(&result);
    ++pending_credits_;
  }
}

bool WorkerLink::FinishLocked(const v1::TaskResult& result) {
  --in_flight_;
  auto it = in_flight_jobs_.find(result.job_id());
  if (it != in_flight_jobs_.end() && --it->second == 0) {
    in_flight_jobs_.erase(it);
  }
  auto gen = in_flight_generation_.find(
      {result.job_id(), result.index(), result.attempt()});
  const bool current = gen != in_flight_generation_.end() &&
                       gen->second.generation == generation_;
  if (gen != in_flight_generation_.end()) {
    ++finished_[gen->second.kind][static_cast<size_t>(result.state()) & 7];
    in_flight_generation_.erase(gen);
  }
  if (result.started_us() > 0 && result.finished_us() >= result.started_us()) {
    run_seconds_.Observe(
        static_cast<double>(result.finished_us() - result.started_us()) / 1e6);
  }
  return current;
}

bool WorkerLink::WaitBackoff(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  options_.clock->AwaitWithDeadline(&mu_, absl::Condition(&stopping_),
                                    options_.clock->Now() + d);
  return !stopping_;
}

void WorkerLink::Run() {
  absl::BitGen rng;
  absl::Duration backoff = options_.min_backoff;
  while (true) {
    if (options_.liveness != nullptr) options_.liveness->Tick();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    Connection connection(this);
    if (connection.Serve()) backoff = options_.min_backoff;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    // "Equal jitter": a wait drawn from [backoff/2, backoff) spreads the
    // workers of a restarted coordinator apart while keeping each one's
    // wait at least half the backoff.
    const absl::Duration wait =
        absl::Milliseconds(absl::Uniform<double>(rng, 0.5, 1.0) *
                           absl::ToDoubleMilliseconds(backoff));
    QFARM_LOG(INFO) << "reconnecting to " << options_.coordinator << " in "
                    << absl::FormatDuration(
                           absl::Trunc(wait, absl::Milliseconds(1)));
    if (!WaitBackoff(wait)) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  // Abandoned tasks were re-queued by the coordinator; stop them here.
  std::vector<uint64_t> jobs;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [job, count] : in_flight_jobs_) jobs.push_back(job);
  }
  for (uint64_t job : jobs) executor_->CancelJob(job);
  executor_->Shutdown();
}

WorkerStats WorkerLink::Stats() const {
  absl::MutexLock lock(&mu_);
  WorkerStats stats;
  for (size_t kind = 0; kind < finished_.size(); ++kind) {
    const std::array<uint64_t, 8>& counts = finished_[kind];
    if (std::all_of(counts.begin(), counts.end(),
                    [](uint64_t n) { return n == 0; })) {
      continue;
    }
    stats.finished[kind < kind_names_.size() ? kind_names_[kind] : "other"] =
        counts;
  }
  stats.run_seconds = run_seconds_;
  stats.in_flight = in_flight_;
  stats.connected = connection_ != nullptr;
  return stats;
}

void WorkerLink::Stop() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ = options_.clock->Now() + options_.drain_grace;
}

}  // namespace qfarm::worker
