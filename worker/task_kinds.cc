#include "worker/task_kinds.h"

#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/task_spec.h"
#include "worker/http_task.h"

namespace qfarm::worker {
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

void CancelToken::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_.store(true, std::memory_order_release);
}

bool CancelToken::WaitFor(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](const std::atomic<bool>* flag) {
            return flag->load(std::memory_order_acquire);
          },
          &cancelled_),
      timeout);
}

std::shared_ptr<CancelToken> JobCancellations::Acquire(uint64_t job_id) {
  absl::MutexLock lock(&mu_);
  Entry& entry = jobs_[job_id];
  if (entry.token == nullptr) entry.token = std::make_shared<CancelToken>();
  ++entry.tasks;
  return entry.token;
}

void JobCancellations::Release(uint64_t job_id,
                               const std::shared_ptr<CancelToken>& token) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  // A cancelled token was forgotten; its tasks are no longer counted.
  if (it == jobs_.end() || it->second.token != token) return;
  if (--it->second.tasks == 0) jobs_.erase(it);
}

std::shared_ptr<CancelToken> JobCancellations::Cancel(uint64_t job_id) {
  std::shared_ptr<CancelToken> token;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return nullptr;
    token = std::move(it->second.token);
    jobs_.erase(it);
  }
  token->Cancel();
  return token;
}

size_t JobCancellations::size() const {
  absl::MutexLock lock(&mu_);
  return jobs_.size();
}

TaskOutcome CheckRunnable(const v1::Task& task) {
  absl::Status valid = ValidateTask(task);
  if (!valid.ok())
    return Failed(absl::StrCat("invalid task: ", valid.message()));
  return {};
}

TaskOutcome RunTaskBlocking(const v1::Task& task, const CancelToken& cancel) {
  TaskOutcome refused = CheckRunnable(task);
  if (refused.state != v1::TASK_STATE_UNSPECIFIED) return refused;
  if (cancel.cancelled()) return CancelledOutcome("job cancelled");
  switch (task.kind()) {
    case v1::TASK_KIND_SLEEP:
      if (cancel.WaitFor(SleepWaitTime(task))) {
        return CancelledOutcome("job cancelled");
      }
      return SleepOutcome(task);
    case v1::TASK_KIND_ECHO:
      return Ok(task.text());
    case v1::TASK_KIND_CPU:
      return RunCpu(task, cancel);
    case v1::TASK_KIND_HTTP:
      return RunHttpBlocking(task, cancel);
    default:
      // CheckRunnable() refuses every other kind.
      return Failed(
          absl::StrCat("kind ", TaskKindName(task.kind()), " has no runner"));
  }
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

TaskOutcome CancelledOutcome(absl::string_view why) {
  return {.state = v1::TASK_STATE_CANCELLED,
          .value = {},
          .error = std::string(why)};
}

TaskOutcome TimedOutOutcome(int64_t timeout_ms) {
  return {.state = v1::TASK_STATE_TIMED_OUT,
          .value = {},
          .error = absl::StrCat("timed out after ", timeout_ms, "ms")};
}

std::string CpuDigestHex(int64_t units) {
  return *IterateSha256(units, nullptr, std::nullopt);
}

v1::TaskResult MakeResult(const v1::Assignment& assignment, TaskOutcome outcome,
                          absl::string_view worker, absl::string_view executor,
                          int64_t started_us, int64_t finished_us) {
  v1::TaskResult result;
  result.set_job_id(assignment.job_id());
  result.set_index(assignment.index());
  result.set_attempt(assignment.attempt());
  result.set_state(outcome.state);
  result.set_value(std::move(outcome.value));
  result.set_error(std::move(outcome.error));
  result.set_worker(std::string(worker));
  result.set_executor(std::string(executor));
  result.set_started_us(started_us);
  result.set_finished_us(finished_us);
  return result;
}

}  // namespace qfarm::worker
