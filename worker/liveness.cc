#include "worker/liveness.h"

#include "absl/strings/str_cat.h"

namespace qfarm::worker {
namespace {

std::string Format(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1)));
}

}  // namespace

Liveness::Liveness(Clock* clock, Options options)
    : clock_(clock),
      options_(options),
      last_tick_(clock->Now()),
      unconnected_since_(last_tick_) {}

void Liveness::Tick() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  last_tick_ = now;
}

void Liveness::SetConnected(bool connected) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (connected_ && !connected) unconnected_since_ = now;
  connected_ = connected;
}

absl::Status Liveness::Check() const {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (now - last_tick_ > options_.stall_limit) {
    return absl::UnavailableError(absl::StrCat(
        "the worker's loop has not turned for ", Format(now - last_tick_)));
  }
  if (!connected_ && now - unconnected_since_ > options_.unreachable_grace) {
    return absl::UnavailableError(
        absl::StrCat("no coordinator for ", Format(now - unconnected_since_)));
  }
  return absl::OkStatus();
}

}  // namespace qfarm::worker
