#include "executors/cancel_token.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <utility>

namespace qfarm {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "CancelToken waits on its flag as a futex word");

void CancelToken::Cancel() {
  cancelled_.store(1, std::memory_order_release);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&cancelled_),
          FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

bool CancelToken::WaitFor(absl::Duration timeout) const {
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  while (!cancelled()) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds::zero()) return false;
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(left);
    struct timespec wait = {
        .tv_sec = static_cast<time_t>(seconds.count()),
        .tv_nsec = static_cast<long>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(left - seconds)
                .count())};
    // Returns when woken, at the timeout, on a signal, or at once if the
    // flag is no longer 0; the loop sorts them out.
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&cancelled_),
            FUTEX_WAIT_PRIVATE, 0, &wait, nullptr, 0);
  }
  return true;
}

}  // namespace qfarm

namespace qfarm::executors {

std::shared_ptr<CancelToken> JobCancellations::Acquire(uint64_t job_id,
                                                       int64_t tasks) {
  absl::MutexLock lock(&mu_);
  Entry& entry = jobs_[job_id];
  if (entry.token == nullptr) entry.token = std::make_shared<CancelToken>();
  entry.tasks += tasks;
  return entry.token;
}

void JobCancellations::Release(uint64_t job_id,
                               const std::shared_ptr<CancelToken>& token,
                               int64_t tasks) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  // A cancelled token was forgotten; its tasks are no longer counted.
  if (it == jobs_.end() || it->second.token != token) return;
  it->second.tasks -= tasks;
  if (it->second.tasks <= 0) jobs_.erase(it);
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

}  // namespace qfarm::executors
