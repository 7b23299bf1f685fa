#include "tests/wire_check.h"

#include <grpcpp/client_context.h>
#include <openssl/sha.h>

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/auth.h"
#include "common/grpc_status.h"
#include "common/task_spec.h"

namespace qfarm::testing {
namespace {

// SHA-256("qfarm") hashed `units` more times, in lowercase hex (the cpu
// kind's value).
std::string CpuDigest(int64_t units) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>("qfarm"), 5, digest);
  for (int64_t i = 0; i < units; ++i) SHA256(digest, sizeof(digest), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string Describe(const v1::TaskResult& r) {
  return absl::StrCat(TaskStateName(r.state()), " value \"",
                      absl::CHexEscape(r.value().substr(0, 80)), "\" attempt ",
                      r.attempt(), " on ", r.worker(), "/", r.executor(),
                      r.error().empty() ? "" : " error: ", r.error());
}

bool SameResult(const v1::TaskResult& a, const v1::TaskResult& b) {
  return a.state() == b.state() && a.value() == b.value() &&
         a.error() == b.error() && a.attempt() == b.attempt() &&
         a.worker() == b.worker() && a.executor() == b.executor() &&
         a.finished_us() == b.finished_us();
}

constexpr size_t kMaxProblemsKept = 40;

}  // namespace

std::optional<std::string> ExpectedValue(const v1::Task& task) {
  if (task.kind() == "echo") return task.text();
  if (task.kind() == "sleep") return absl::StrCat(task.arg());
  if (task.kind() == "cpu") return CpuDigest(task.arg());
  return std::nullopt;
}

std::vector<v1::Task> DistinctTasks(const std::string& label,
                                    const JobShape& shape,
                                    std::mt19937_64& rng) {
  std::vector<v1::Task> tasks;
  for (int i = 0; i < shape.sleeps; ++i) {
    v1::Task& t = tasks.emplace_back();
    t.set_kind("sleep");
    t.set_arg(shape.min_sleep_ms + int64_t{i} * shape.sleep_step_ms);
  }
  for (int i = 0; i < shape.cpus; ++i) {
    v1::Task& t = tasks.emplace_back();
    t.set_kind("cpu");
    t.set_arg(shape.min_cpu_units + i);
  }
  for (int i = 0; i < shape.echoes; ++i) {
    tasks.emplace_back().set_kind("echo");
  }
  std::shuffle(tasks.begin(), tasks.end(), rng);
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].kind() == "echo") {
      tasks[i].set_text(absl::StrCat(label, "/", i));
    }
  }
  return tasks;
}

void ResultLedger::AddJob(uint64_t job, std::vector<v1::Task> tasks,
                          Expect expect) {
  absl::MutexLock lock(&mu_);
  if (jobs_.contains(job)) {
    ProblemLocked(&stats_.other, absl::StrCat("job ", job,
                                              " submitted twice "
                                              "(two acceptances, one id)"));
    return;
  }
  Job& entry = jobs_[job];
  entry.first.resize(tasks.size());
  entry.expected.resize(tasks.size());
  entry.tasks = std::move(tasks);
  entry.expect = expect;
}

bool ResultLedger::HasJob(uint64_t job) const {
  absl::MutexLock lock(&mu_);
  return jobs_.contains(job);
}

int ResultLedger::OpenStream(const std::string& label) {
  absl::MutexLock lock(&mu_);
  streams_.push_back({.label = label, .seen = {}});
  return static_cast<int>(streams_.size() - 1);
}

void ResultLedger::ProblemLocked(uint64_t* counter, std::string problem) {
  ++*counter;
  if (problems_.size() < kMaxProblemsKept) {
    problems_.push_back(std::move(problem));
  }
}

void ResultLedger::AddProblem(const std::string& problem) {
  absl::MutexLock lock(&mu_);
  ProblemLocked(&stats_.other, problem);
}

void ResultLedger::Record(int stream_id, const v1::TaskResult& result) {
  absl::MutexLock lock(&mu_);
  ++stats_.read;
  Stream& stream = streams_.at(static_cast<size_t>(stream_id));
  const uint64_t id = result.job_id();
  const uint32_t index = result.index();
  const std::string where =
      absl::StrCat("job ", id, " index ", index, " on ", stream.label);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    ProblemLocked(&stats_.wrong,
                  absl::StrCat(where, ": a job this client never submitted"));
    return;
  }
  Job& job = it->second;
  if (index >= job.tasks.size()) {
    ProblemLocked(&stats_.wrong, absl::StrCat(where, ": past the job's ",
                                              job.tasks.size(), " tasks"));
    return;
  }
  if (!stream.seen.insert({id, index}).second) {
    ProblemLocked(&stats_.duplicated,
                  absl::StrCat(where, ": twice on one stream (now ",
                               Describe(result), ")"));
    return;
  }
  if (!IsFinal(result.state())) {
    ProblemLocked(&stats_.wrong,
                  absl::StrCat(where, ": not final: ", Describe(result)));
  } else if (job.expect == Expect::kOk && result.state() != v1::TASK_STATE_OK) {
    ProblemLocked(&stats_.wrong,
                  absl::StrCat(where, ": not OK: ", Describe(result)));
  } else if (result.state() == v1::TASK_STATE_OK) {
    // Computed when first needed: a cpu task's digest costs its whole run.
    Expected& expected = job.expected[index];
    if (!expected.known) {
      expected.value = ExpectedValue(job.tasks[index]);
      expected.known = true;
    }
    if (expected.value.has_value() && result.value() != *expected.value) {
      ProblemLocked(&stats_.wrong,
                    absl::StrCat(where, ": value \"",
                                 absl::CHexEscape(result.value().substr(0, 80)),
                                 "\", its spec (",
                                 FormatTaskSpec(job.tasks[index]), ") gives \"",
                                 *expected.value, "\"; ", Describe(result)));
    }
  }
  std::unique_ptr<v1::TaskResult>& first = job.first[index];
  if (first == nullptr) {
    first = std::make_unique<v1::TaskResult>(result);
    ++job.have;
    ++stats_.unique;
  } else {
    ++stats_.resent;
    if (!SameResult(*first, result)) {
      ProblemLocked(&stats_.duplicated,
                    absl::StrCat(where, ": changed: read before as ",
                                 Describe(*first), ", now ", Describe(result)));
    }
  }
}

void ResultLedger::JobFinishedOnStream(int stream_id, uint64_t id) {
  absl::MutexLock lock(&mu_);
  Stream& stream = streams_.at(static_cast<size_t>(stream_id));
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    ProblemLocked(&stats_.other, absl::StrCat(stream.label, ": job ", id,
                                              " finished, never submitted"));
    return;
  }
  const auto n = static_cast<uint32_t>(it->second.tasks.size());
  uint32_t missing = 0;
  uint32_t first_missing = 0;
  for (uint32_t i = n; i-- > 0;) {
    if (!stream.seen.contains({id, i})) {
      ++missing;
      first_missing = i;
    }
  }
  if (missing > 0) {
    ProblemLocked(
        &stats_.other,
        absl::StrCat(stream.label, ": job ", id,
                     " finished, yet the stream carried ", n - missing,
                     " of its ", n, " results (first missing: index ",
                     first_missing, ")"));
  }
}

bool ResultLedger::Complete(uint64_t id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  return it != jobs_.end() && it->second.have == it->second.tasks.size();
}

std::vector<v1::TaskResult> ResultLedger::Results(uint64_t id) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::TaskResult> out;
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return out;
  for (const auto& r : it->second.first) {
    out.push_back(r == nullptr ? v1::TaskResult() : *r);
  }
  return out;
}

ResultLedger::Stats ResultLedger::stats() const {
  absl::MutexLock lock(&mu_);
  Stats stats = stats_;
  for (const auto& [id, job] : jobs_)
    stats.missing += job.tasks.size() - job.have;
  return stats;
}

uint64_t ResultLedger::problem_count() const {
  const Stats s = stats();
  return s.duplicated + s.wrong + s.other;
}

std::string ResultLedger::Report() const {
  const Stats s = stats();
  std::string out;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& p : problems_) absl::StrAppend(&out, p, "\n");
  }
  absl::StrAppend(&out, "ledger: ", s.read, " results read (", s.unique,
                  " distinct, ", s.resent, " resent after a reconnect), ",
                  s.missing, " missing, ", s.duplicated, " duplicated, ",
                  s.wrong, " wrong, ", s.other, " other problems\n");
  return out;
}

absl::Status WatchRaw(v1::Farm::StubInterface* stub, uint64_t job,
                      ResultLedger* ledger, absl::Time give_up,
                      const std::string& token) {
  absl::Duration pause = absl::Milliseconds(20);
  for (int call = 1;; ++call) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(give_up));
    // While the coordinator restarts, wait for it rather than fail at once.
    context.set_wait_for_ready(true);
    if (!token.empty()) {
      context.AddMetadata("authorization", BearerHeader(token));
    }
    v1::WatchJobRequest request;
    request.set_job_id(job);
    const int stream =
        ledger->OpenStream(absl::StrCat("WatchJob(", job, ") call ", call));
    std::unique_ptr<grpc::ClientReaderInterface<v1::ResultBatch>> reader =
        stub->WatchJob(&context, request);
    v1::ResultBatch batch;
    while (reader->Read(&batch)) {
      for (const v1::TaskResult& r : batch.results()) {
        ledger->Record(stream, r);
      }
    }
    const grpc::Status status = reader->Finish();
    if (status.ok()) {
      ledger->JobFinishedOnStream(stream, job);
      return absl::OkStatus();
    }
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        absl::Now() + pause >= give_up) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrCat("WatchJob(", job, ") call ", call, ": ",
                                       status.error_message()));
    }
    // The coordinator is away (restarting): call again.
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(500));
  }
}

RawSession::RawSession(v1::Farm::StubInterface* stub, ResultLedger* ledger,
                       const std::string& label, const std::string& token)
    : ledger_(ledger) {
  if (!token.empty()) {
    context_.AddMetadata("authorization", BearerHeader(token));
  }
  context_.set_wait_for_ready(true);
  stream_id_ = ledger_->OpenStream(label);
  stream_ = stub->Session(&context_);
  reader_ = std::thread([this] { ReadLoop(); });
}

RawSession::~RawSession() {
  context_.TryCancel();
  reader_.join();
}

bool RawSession::Send(uint64_t tag, const std::vector<v1::Task>& tasks,
                      ResultLedger::Expect expect) {
  {
    absl::MutexLock lock(&mu_);
    if (tags_.contains(tag)) {
      ledger_->AddProblem(
          absl::StrCat("test bug: session tag ", tag, " sent twice"));
      return false;
    }
    Tag& entry = tags_[tag];
    entry.tasks = tasks;
    entry.expect = expect;
  }
  v1::SessionRequest request;
  request.set_tag(tag);
  for (const v1::Task& t : tasks) *request.add_tasks() = t;
  absl::MutexLock lock(&write_mu_);
  if (writes_done_) return false;
  return stream_->Write(request);
}

void RawSession::WritesDone() {
  absl::MutexLock lock(&write_mu_);
  if (writes_done_) return;
  writes_done_ = true;
  stream_->WritesDone();
}

void RawSession::ReadLoop() {
  v1::SessionResponse response;
  while (stream_->Read(&response)) {
    const uint64_t tag = response.tag();
    {
      absl::MutexLock lock(&mu_);
      auto it = tags_.find(tag);
      if (it == tags_.end()) {
        ledger_->AddProblem(
            absl::StrCat("Session: a response for tag ", tag, ", never sent"));
        continue;
      }
      Tag& entry = it->second;
      if (entry.finished || entry.refused.has_value()) {
        ledger_->AddProblem(absl::StrCat("Session: a response for tag ", tag,
                                         " after its last one"));
        continue;
      }
      if (response.has_error()) {
        entry.refused = FromRpcStatus(response.error());
        continue;
      }
      if (response.job_id() == 0) {
        ledger_->AddProblem(absl::StrCat("Session: tag ", tag,
                                         ": a response without a job id"));
        continue;
      }
      if (entry.job == 0) {
        // Registered before its results are recorded, and before a waiter
        // learns the id.
        ledger_->AddJob(response.job_id(), entry.tasks, entry.expect);
        entry.job = response.job_id();
      } else if (entry.job != response.job_id()) {
        ledger_->AddProblem(absl::StrCat("Session: tag ", tag, ": job id ",
                                         entry.job, " then ",
                                         response.job_id()));
        continue;
      }
    }
    for (const v1::TaskResult& r : response.results()) {
      if (r.job_id() != response.job_id()) {
        ledger_->AddProblem(
            absl::StrCat("Session: tag ", tag, " (job ", response.job_id(),
                         ") carried a result of job ", r.job_id()));
      }
      ledger_->Record(stream_id_, r);
    }
    if (response.finished()) {
      ledger_->JobFinishedOnStream(stream_id_, response.job_id());
      absl::MutexLock lock(&mu_);
      tags_[tag].finished = true;
    }
  }
  const grpc::Status status = stream_->Finish();
  absl::MutexLock lock(&mu_);
  ended_ = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
}

absl::StatusOr<uint64_t> RawSession::WaitAccepted(uint64_t tag,
                                                  absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto decided = [this, tag]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = tags_.find(tag);
    return it == tags_.end() || it->second.job != 0 ||
           it->second.refused.has_value() || ended_.has_value();
  };
  mu_.AwaitWithDeadline(absl::Condition(&decided), deadline);
  auto it = tags_.find(tag);
  if (it == tags_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("tag ", tag, " never sent"));
  }
  if (it->second.job != 0) return it->second.job;
  if (it->second.refused.has_value()) return *it->second.refused;
  if (ended_.has_value()) {
    return absl::Status(ended_->code(),
                        absl::StrCat("session ended before the job was "
                                     "accepted: ",
                                     ended_->message()));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("tag ", tag, " not accepted in time"));
}

absl::Status RawSession::WaitEnded(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ended_.has_value();
  };
  if (!mu_.AwaitWithDeadline(absl::Condition(&ended), deadline)) {
    return absl::DeadlineExceededError("session still open");
  }
  return *ended_;
}

bool RawSession::Finished(uint64_t tag) const {
  absl::MutexLock lock(&mu_);
  auto it = tags_.find(tag);
  return it != tags_.end() && it->second.finished;
}

std::vector<std::pair<uint64_t, uint64_t>> RawSession::Accepted() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& [tag, entry] : tags_) {
    if (entry.job != 0) out.emplace_back(tag, entry.job);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace qfarm::testing
