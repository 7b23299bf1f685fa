// libFuzzer target for the coordinator's handling of worker messages,
// without a network: up to four worker streams, each a WorkerProtocol over
// the real Scheduler and Router with a fake WorkerChannel, driven by a script
// the fuzzer writes. Its steps:
//   - a WorkerMessage from raw bytes (decoding included) on a stream;
//   - a hello, credits, a heartbeat on a stream;
//   - results for tasks the stream was given, true or altered (another
//     index, attempt or job, a duplicate, any state);
//   - the end of a stream; a job submitted or cancelled; time passing with
//     silent workers expired; the journal making its appends durable.
//
// After every step, for every job: its counters add up to its tasks, and the
// results a client can read have each index at most once, never change once
// read, and stay within the job's tasks. At the end, once every stream has
// ended, no task is left running and no worker is left connected.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "coordinator/router.h"
#include "coordinator/scheduler.h"
#include "coordinator/worker_protocol.h"
#include "google/protobuf/stubs/logging.h"
#include "qfarm/v1/task.pb.h"
#include "qfarm/v1/worker_link.pb.h"

namespace qfarm::coordinator {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "worker_link_fuzzer: %s\n", what.c_str());
  std::abort();
}

constexpr int kStreams = 4;
constexpr int kMaxJobs = 8;
constexpr int kMaxTasksPerJob = 48;

// Holds the scheduler's appends until the script makes them durable.
class HeldJournal final : public ResultJournal {
 public:
  uint64_t AppendResults(std::vector<v1::TaskResult>, Done done) override {
    pending_.push_back(std::move(done));
    return ++sequence_;
  }
  uint64_t AppendCancel(JobId, std::vector<v1::TaskResult>,
                        Done done) override {
    pending_.push_back(std::move(done));
    return ++sequence_;
  }
  uint64_t AppendAttempts(std::vector<v1::TaskResult>, Done) override {
    return ++sequence_;
  }
  uint64_t AppendRelease(std::vector<ReleasedJob>, Done) override {
    return ++sequence_;
  }
  // Completes the first `n` appends held, in order.
  void MakeDurable(size_t n) {
    while (n-- > 0 && !pending_.empty()) {
      Done done = std::move(pending_.front());
      pending_.erase(pending_.begin());
      std::move(done)(absl::OkStatus());
    }
  }

 private:
  std::vector<Done> pending_;
  uint64_t sequence_ = 0;
};

// One worker stream: the protocol and what the coordinator sent on it.
struct Stream : WorkerChannel {
  Stream(Scheduler* scheduler, Router* router)
      : protocol(scheduler, router, "fuzz") {}

  void SendTasks(
      google::protobuf::RepeatedPtrField<v1::Assignment> batch) override {
    if (closed) return;  // A closed stream drops what comes after.
    for (v1::Assignment& a : batch) given.push_back(std::move(a));
  }
  void SendCancel(JobId) override {}
  void Close(const absl::Status&) override {
    closed = true;
    protocol.OnEnd();
  }

  WorkerProtocol protocol;
  std::vector<v1::Assignment> given;
  bool closed = false;
};

class Farm {
 public:
  Farm(bool journaled, size_t max_batch)
      : scheduler_(&clock_, {.max_queued = 256,
                             .max_batch = max_batch,
                             .heartbeat_timeout = absl::Seconds(1),
                             .retry_backoff_base = absl::Milliseconds(10),
                             .retry_backoff_max = absl::Milliseconds(80)}),
        router_(&scheduler_) {
    if (journaled) {
      scheduler_.SetJournal(&journal_, [this](const std::vector<JobId>& jobs) {
        router_.WakeWatchers(jobs);
      });
    }
  }

  void Step(FuzzedDataProvider& in) {
    const int s = in.ConsumeIntegralInRange(0, kStreams - 1);
    switch (in.ConsumeIntegralInRange(0, 9)) {
      case 0: {  // Raw bytes, as gRPC would hand them over.
        const std::string bytes =
            in.ConsumeBytesAsString(in.ConsumeIntegralInRange(0, 512));
        v1::WorkerMessage message;
        // A message that does not parse fails the read: the stream ends.
        if (!message.ParseFromString(bytes)) {
          End(s);
          return;
        }
        Deliver(s, message);
        return;
      }
      case 1: {
        v1::WorkerMessage message;
        v1::WorkerHello* hello = message.mutable_hello();
        hello->set_worker_id(in.ConsumeBool() ? "" : absl::StrCat("w", s));
        hello->set_mode("thread");
        hello->set_slots(in.ConsumeIntegralInRange<uint32_t>(0, 9));
        // Mostly the kind the tasks have; sometimes none (refused).
        if (in.ConsumeIntegralInRange<int>(0, 7) != 0) hello->add_kinds("echo");
        message.set_credits(in.ConsumeIntegralInRange<uint32_t>(0, 12));
        Deliver(s, message);
        return;
      }
      case 2: {
        v1::WorkerMessage message;
        if (in.ConsumeBool()) message.mutable_heartbeat();
        message.set_credits(in.ConsumeIntegralInRange<uint32_t>(0, 12));
        Deliver(s, message);
        return;
      }
      case 3:
      case 4:
        Answer(s, in);
        return;
      case 5:
        End(s);
        return;
      case 6:
        Submit(in);
        return;
      case 7: {
        if (jobs_.empty()) return;
        auto it = jobs_.begin();
        std::advance(it,
                     in.ConsumeIntegralInRange<size_t>(0, jobs_.size() - 1));
        const JobId job = it->first;
        absl::StatusOr<CancelOutcome> outcome = scheduler_.CancelJob(job);
        if (!outcome.ok()) Fail(outcome.status().ToString());
        router_.SendCancel(job, outcome->workers_to_notify);
        router_.WakeWatchers({job});
        return;
      }
      case 8: {  // The coordinator's tick.
        clock_.Advance(absl::Milliseconds(in.ConsumeIntegralInRange(0, 1500)));
        Expiry expiry = scheduler_.ExpireSilentWorkers();
        for (WorkerKey key : expiry.workers) {
          router_.CloseWorker(key, absl::UnavailableError("expired"));
        }
        router_.WakeWatchers(expiry.jobs);
        router_.Pump();
        return;
      }
      case 9:
        journal_.MakeDurable(in.ConsumeIntegralInRange<size_t>(0, 4));
        return;
    }
  }

  // Every invariant a client relies on, for every job.
  void Check() {
    for (auto& [id, seen] : jobs_) {
      absl::StatusOr<v1::JobInfo> info = scheduler_.GetJob(id);
      if (!info.ok()) Fail(info.status().ToString());
      const uint64_t counted = uint64_t{info->queued()} + info->running() +
                               info->ok() + info->failed() + info->timed_out() +
                               info->cancelled();
      if (counted != info->total()) {
        Fail(absl::StrCat("job ", id, " counts ", counted, " tasks of ",
                          info->total(), ": ", info->ShortDebugString()));
      }
      absl::StatusOr<ResultsPage> page =
          scheduler_.ReadResults(id, 0, info->total() + 1);
      if (!page.ok()) Fail(page.status().ToString());
      if (page->results.size() < seen.size()) {
        Fail(absl::StrCat("job ", id, " had ", seen.size(),
                          " readable results, now ", page->results.size()));
      }
      std::vector<bool> index_seen(info->total(), false);
      for (size_t i = 0; i < page->results.size(); ++i) {
        const v1::TaskResult& r = page->results[i];
        if (r.job_id() != id || r.index() >= info->total()) {
          Fail(absl::StrCat("job ", id, " reads a result of job ", r.job_id(),
                            " index ", r.index()));
        }
        if (index_seen[r.index()]) {
          Fail(absl::StrCat("job ", id, " index ", r.index(),
                            " is readable twice"));
        }
        index_seen[r.index()] = true;
        if (!IsFinal(r.state())) {
          Fail(absl::StrCat("job ", id, " reads a result that is not final: ",
                            r.ShortDebugString()));
        }
        const std::string bytes = r.SerializeAsString();
        if (i < seen.size() && seen[i] != bytes) {
          Fail(absl::StrCat("job ", id, " result ", i, " changed after read"));
        }
        if (i >= seen.size()) seen.push_back(bytes);
      }
      if (page->finished && page->results.size() != info->total()) {
        Fail(absl::StrCat("job ", id, " finished with ", page->results.size(),
                          " of ", info->total(), " results"));
      }
    }
  }

  // Ends every stream; then nothing may be running or connected.
  void Finish() {
    for (int s = 0; s < kStreams; ++s) End(s);
    router_.Pump();
    if (!scheduler_.ListWorkers().empty()) {
      Fail("a worker is still connected after every stream ended");
    }
    for (auto& [id, seen] : jobs_) {
      absl::StatusOr<v1::JobInfo> info = scheduler_.GetJob(id);
      if (info->running() != 0) {
        Fail(absl::StrCat("job ", id, " has ", info->running(),
                          " tasks running on no worker"));
      }
    }
    journal_.MakeDurable(SIZE_MAX);  // Nothing waits on the journal after.
    Check();
  }

 private:
  Stream& Open(int s) {
    if (streams_[s] == nullptr || streams_[s]->closed) {
      streams_[s] = std::make_shared<Stream>(&scheduler_, &router_);
    }
    return *streams_[s];
  }

  void Deliver(int s, v1::WorkerMessage& message) {
    Stream& stream = Open(s);
    std::shared_ptr<Stream> self = streams_[s];
    absl::Status status = stream.protocol.OnMessage(
        message,
        [&self](WorkerKey, const std::string&)
            -> std::shared_ptr<WorkerChannel> { return self; });
    if (!status.ok()) End(s);  // As the stream reactor ends it.
  }

  void End(int s) {
    if (streams_[s] == nullptr) return;
    streams_[s]->closed = true;
    streams_[s]->protocol.OnEnd();
    streams_[s]->given.clear();
  }

  // Results for tasks the stream was given, some altered.
  void Answer(int s, FuzzedDataProvider& in) {
    if (streams_[s] == nullptr || streams_[s]->given.empty()) return;
    std::vector<v1::Assignment>& given = streams_[s]->given;
    v1::WorkerMessage message;
    const size_t n = in.ConsumeIntegralInRange<size_t>(1, 8);
    for (size_t i = 0; i < n && !given.empty(); ++i) {
      const size_t pick =
          in.ConsumeIntegralInRange<size_t>(0, given.size() - 1);
      const v1::Assignment& a = given[pick];
      v1::TaskResult* r = message.mutable_results()->add_results();
      r->set_job_id(a.job_id());
      r->set_index(a.index());
      r->set_attempt(a.attempt());
      r->set_state(static_cast<v1::TaskState>(in.ConsumeIntegralInRange(0, 8)));
      r->set_value(absl::StrCat(a.job_id(), "/", a.index(), "/", a.attempt()));
      switch (in.ConsumeIntegralInRange(0, 7)) {
        case 0:
          r->set_attempt(a.attempt() + in.ConsumeIntegralInRange(-1, 1));
          break;
        case 1:
          r->set_index(a.index() + in.ConsumeIntegralInRange(-1, 1));
          break;
        case 2:
          r->set_job_id(a.job_id() + in.ConsumeIntegralInRange(-1, 1));
          break;
        default:  // True: kept for a duplicate unless removed.
          if (in.ConsumeBool()) given.erase(given.begin() + pick);
          break;
      }
    }
    message.set_credits(in.ConsumeIntegralInRange<uint32_t>(0, 8));
    Deliver(s, message);
  }

  void Submit(FuzzedDataProvider& in) {
    const int n = in.ConsumeIntegralInRange(0, kMaxTasksPerJob);
    std::vector<v1::Task> tasks(static_cast<size_t>(n));
    for (v1::Task& task : tasks) {
      task.set_kind("echo");
      task.set_max_attempts(in.ConsumeIntegralInRange<uint32_t>(0, 3));
    }
    if (jobs_.size() >= kMaxJobs) return;
    absl::StatusOr<JobId> job = scheduler_.SubmitJob(std::move(tasks));
    if (!job.ok()) {
      if (job.status().code() != absl::StatusCode::kInvalidArgument &&
          job.status().code() != absl::StatusCode::kResourceExhausted) {
        Fail(job.status().ToString());
      }
      return;
    }
    jobs_[*job] = {};
    router_.Pump();
  }

  FakeClock clock_;
  HeldJournal journal_;
  Scheduler scheduler_;
  Router router_;
  std::array<std::shared_ptr<Stream>, kStreams> streams_;
  // Per job, the readable results seen so far, serialized, in read order.
  std::map<JobId, std::vector<std::string>> jobs_;
};

}  // namespace
}  // namespace qfarm::coordinator

// Protobuf logs every string field that is not UTF-8; raw bytes make many.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const bool journaled = in.ConsumeBool();
  const size_t max_batch = in.ConsumeIntegralInRange<size_t>(1, 8);
  qfarm::coordinator::Farm farm(journaled, max_batch);
  for (int steps = 0; steps < 256 && in.remaining_bytes() > 0; ++steps) {
    farm.Step(in);
    farm.Check();
  }
  farm.Finish();
  return 0;
}
