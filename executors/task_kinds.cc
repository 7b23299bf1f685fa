#include "executors/task_kinds.h"

#include <linux/futex.h>
#include <openssl/evp.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <climits>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/task_spec.h"
#include "executors/http_task.h"
#include "executors/kind_runner.h"
#include "google/protobuf/message.h"
#include "google/protobuf/unknown_field_set.h"

namespace qfarm::executors {
namespace {

// Cancellation and the timeout are polled once per this many iterations.
constexpr int64_t kCpuCheckEvery = 1024;

using Digest = std::array<unsigned char, 32>;

// Owns an EVP_MD_CTX and the SHA-256 implementation, fetched once: a fetched
// EVP_MD hashes ~3x faster than EVP_sha256(), which OpenSSL 3 looks up again
// on every init.
class DigestContext {
 public:
  DigestContext()
      : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
    QFARM_CHECK(md_ != nullptr && ctx_ != nullptr)
        << "OpenSSL cannot provide SHA-256";
  }
  ~DigestContext() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }
  DigestContext(const DigestContext&) = delete;
  DigestContext& operator=(const DigestContext&) = delete;

  // SHA-256 of `size` bytes at `data` into `out`.
  void Sha256(const void* data, size_t size, Digest& out) {
    unsigned int length = 0;
    const bool ok = EVP_DigestInit_ex(ctx_, md_, nullptr) == 1 &&
                    EVP_DigestUpdate(ctx_, data, size) == 1 &&
                    EVP_DigestFinal_ex(ctx_, out.data(), &length) == 1;
    QFARM_CHECK(ok && length == out.size()) << "SHA-256 failed";
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

// The cpu kind's work. Returns the hex digest, or nullopt if `cancel` was
// set or `deadline` passed at a check point. Null `cancel` and no deadline
// run to the end.
std::optional<std::string> IterateSha256(
    int64_t units, const CancelToken* cancel,
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  DigestContext ctx;
  Digest digest;
  Digest next;
  constexpr absl::string_view kSeed = "qfarm";
  ctx.Sha256(kSeed.data(), kSeed.size(), digest);
  for (int64_t i = 0; i < units; ++i) {
    if (i % kCpuCheckEvery == 0 && i > 0) {
      if (cancel != nullptr && cancel->cancelled()) return std::nullopt;
      if (deadline && std::chrono::steady_clock::now() >= *deadline) {
        return std::nullopt;
      }
    }
    ctx.Sha256(digest.data(), digest.size(), next);
    digest = next;
  }
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(digest.data()), digest.size()));
}

TaskOutcome Ok(std::string value) {
  return {.state = v1::TASK_STATE_OK, .value = std::move(value), .error = {}};
}

TaskOutcome Failed(std::string error) {
  return {
      .state = v1::TASK_STATE_FAILED, .value = {}, .error = std::move(error)};
}

TaskOutcome RunCpu(const v1::Task& task, const CancelToken& cancel) {
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (task.timeout_ms() > 0) {
    deadline = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(task.timeout_ms());
  }
  std::optional<std::string> digest =
      IterateSha256(task.arg(), &cancel, deadline);
  if (digest) return Ok(*std::move(digest));
  if (cancel.cancelled()) return CancelledOutcome("job cancelled");
  return TimedOutOutcome(task.timeout_ms());
}

}  // namespace

TaskOutcome CheckRunnable(const Kinds& kinds, const v1::Task& task,
                          const Kinds::Kind** kind) {
  const Kinds::Kind* found = KindOf(kinds, task);
  if (found != nullptr || !task.kind().empty()) {
    // The rules only: the coordinator checked its limits (see NoTaskLimits).
    static const TaskLimits kNoLimits = NoTaskLimits();
    absl::Status valid = ValidateTask(
        task, found != nullptr ? found->name : task.kind(), kNoLimits);
    if (!valid.ok()) {
      return Failed(absl::StrCat("invalid task: ", valid.message()));
    }
  }
  if (found == nullptr) {
    const std::string named = task.kind().empty()
                                  ? absl::StrCat("of index ", task.kind_index())
                                  : absl::StrCat("\"", task.kind(), "\"");
    return Failed(absl::StrCat("kind ", named,
                               " is not offered here (offered: ",
                               absl::StrJoin(kinds.names(), ", "), ")"));
  }
  if (kind != nullptr) *kind = found;
  return {};
}

TaskOutcome RunTaskBlocking(const Kinds& kinds, const v1::Task& task,
                            const CancelToken& cancel) {
  const Kinds::Kind* kind = nullptr;
  TaskOutcome refused = CheckRunnable(kinds, task, &kind);
  if (refused.state != v1::TASK_STATE_UNSPECIFIED) return refused;
  if (cancel.cancelled()) return CancelledOutcome("job cancelled");
  switch (kind->builtin) {
    case Kinds::Builtin::kSleep:
      if (cancel.WaitFor(SleepWaitTime(task))) {
        return CancelledOutcome("job cancelled");
      }
      return SleepOutcome(task);
    case Kinds::Builtin::kEcho:
      return Ok(task.text());
    case Kinds::Builtin::kCpu:
      return RunCpu(task, cancel);
    case Kinds::Builtin::kHttp:
      return RunHttpBlocking(task, cancel);
    case Kinds::Builtin::kNone:
      break;
  }
  return RunRegisteredBlocking(*kind, task, cancel);
}

absl::Duration SleepWaitTime(const v1::Task& task) {
  int64_t ms = task.arg();
  if (task.timeout_ms() > 0 && task.timeout_ms() < ms) ms = task.timeout_ms();
  return absl::Milliseconds(ms);
}

TaskOutcome SleepOutcome(const v1::Task& task) {
  if (task.timeout_ms() > 0 && task.arg() > task.timeout_ms()) {
    return TimedOutOutcome(task.timeout_ms());
  }
  return Ok(absl::StrCat(task.arg()));
}

std::string CpuDigestHex(int64_t units) {
  return *IterateSha256(units, nullptr, std::nullopt);
}

namespace {

// TaskResult's reflection, fetched once: GetReflection() costs about 100
// instructions a call. The empty UnknownFieldSet that GetUnknownFields()
// returns for a message without unknown fields is made here too, under this
// static's guard, so that every thread using it is ordered after its
// construction (protobuf's own guard is invisible to ThreadSanitizer).
const google::protobuf::Reflection& TaskResultReflection() {
  static const google::protobuf::Reflection* const reflection = [] {
    google::protobuf::UnknownFieldSet::default_instance();
    return v1::TaskResult::GetReflection();
  }();
  return *reflection;
}

}  // namespace

void RunEcho(v1::Assignment& assignment, absl::string_view worker,
             absl::string_view executor, int64_t now_us, v1::TaskResult* out) {
  // Every field is set below: a reused message needs no Clear() first, and
  // keeps its worker and executor strings when they are the same. Unknown
  // fields (which no executor or sink of ours adds) are cleared all the same.
  if (!TaskResultReflection().GetUnknownFields(*out).empty()) out->Clear();
  out->set_job_id(assignment.job_id());
  out->set_index(assignment.index());
  out->set_attempt(assignment.attempt());
  const v1::Task& task = assignment.task();
  // ValidateTask()'s rules for an echo task under NoTaskLimits(), checked
  // inline: it is run millions of times a second.
  const bool valid = task.data().empty() && task.timeout_ms() >= 0;
  if (valid) {
    out->set_state(v1::TASK_STATE_OK);
    out->mutable_value()->swap(*assignment.mutable_task()->mutable_text());
    if (!out->error().empty()) out->clear_error();
  } else {
    out->set_state(v1::TASK_STATE_FAILED);
    if (!out->value().empty()) out->clear_value();
    out->set_error(
        absl::StrCat("invalid task: ",
                     ValidateTask(task, kEchoKind, NoTaskLimits()).message()));
  }
  if (out->worker() != worker) {
    out->mutable_worker()->assign(worker.data(), worker.size());
  }
  if (out->executor() != executor) {
    out->mutable_executor()->assign(executor.data(), executor.size());
  }
  out->set_queued_us(0);
  out->set_dispatched_us(0);
  out->set_started_us(now_us);
  out->set_finished_us(now_us);
}

v1::TaskResult& ResultBuffer::Next() {
  if (size_ < results_.size()) return results_[size_++];
  ++size_;
  if (spares_.empty()) return results_.emplace_back();
  // Moving a message swaps its fields: its strings keep their allocations.
  v1::TaskResult& result = results_.emplace_back(std::move(spares_.back()));
  spares_.pop_back();
  return result;
}

void ResultBuffer::FlushTo(ResultSink* sink) {
  if (size_ == 0) return;
  if (size_ < results_.size()) {
    // The sink gets exactly the batch; the messages past it wait aside.
    for (size_t i = size_; i < results_.size(); ++i) {
      if (spares_.size() < kMaxSpares) {
        spares_.push_back(std::move(results_[i]));
      }
    }
    results_.resize(size_);
  }
  // What the sink leaves in results_ is ours to reuse.
  sink->OnResults(results_);
  size_ = 0;
  if (results_.size() > kMaxSpares) results_.resize(kMaxSpares);
}

void MakeResultInto(const v1::Assignment& assignment, TaskOutcome outcome,
                    absl::string_view worker, absl::string_view executor,
                    int64_t started_us, int64_t finished_us,
                    v1::TaskResult* out) {
  out->Clear();
  out->set_job_id(assignment.job_id());
  out->set_index(assignment.index());
  out->set_attempt(assignment.attempt());
  out->set_state(outcome.state);
  if (!outcome.value.empty()) out->set_value(std::move(outcome.value));
  if (!outcome.error.empty()) out->set_error(std::move(outcome.error));
  out->mutable_worker()->assign(worker.data(), worker.size());
  out->mutable_executor()->assign(executor.data(), executor.size());
  out->set_started_us(started_us);
  out->set_finished_us(finished_us);
}

v1::TaskResult MakeResult(const v1::Assignment& assignment, TaskOutcome outcome,
                          absl::string_view worker, absl::string_view executor,
                          int64_t started_us, int64_t finished_us) {
  v1::TaskResult result;
  MakeResultInto(assignment, std::move(outcome), worker, executor, started_us,
                 finished_us, &result);
  return result;
}

}  // namespace qfarm::executors
