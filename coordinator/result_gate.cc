#include "coordinator/result_gate.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace qfarm::coordinator {
namespace {

void AddOnce(std::vector<JobId>& jobs, JobId job) {
  if (std::find(jobs.begin(), jobs.end(), job) == jobs.end()) {
    jobs.push_back(job);
  }
}

}  // namespace

void ResultGate::Hold(uint64_t ticket, std::vector<JobId> jobs) {
  held_[ticket] = std::move(jobs);
}

std::vector<JobId> ResultGate::Durable(uint64_t ticket) {
  std::vector<JobId> woken;
  if (ticket != released_ + 1) {
    durable_ahead_.insert(ticket);
    return woken;
  }
  while (true) {
    ++released_;
    auto it = held_.find(released_);
    QFARM_CHECK(it != held_.end())
        << "journal ticket " << released_ << " was never issued";
    for (JobId id : it->second) AddOnce(woken, id);
    held_.erase(it);
    if (durable_ahead_.erase(released_ + 1) == 0) break;
  }
  return woken;
}

std::vector<JobId> ResultGate::Fail(const absl::Status& status) {
  if (error_.ok()) {
    error_ = absl::UnavailableError(absl::StrCat(
        "results not durable, the journal failed: ", status.message()));
  }
  std::vector<JobId> held;
  for (const auto& [ticket, jobs] : held_) {
    for (JobId id : jobs) AddOnce(held, id);
  }
  std::sort(held.begin(), held.end());
  return held;
}

}  // namespace qfarm::coordinator
