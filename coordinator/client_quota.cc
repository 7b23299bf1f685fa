#include "coordinator/client_quota.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace qfarm::coordinator {

absl::Status ClientQuota::Reserve(const std::string& client) {
  if (max_ == 0) return absl::OkStatus();
  std::vector<JobId> known;
  bool sweep = false;
  bool reserved = false;
  {
    absl::MutexLock lock(&mu_);
    // Starts a sweep, after this reservation: one lock on the common path.
    if (!sweeping_ && clients_.size() >= sweep_at_) sweeping_ = sweep = true;
    Client& c = clients_[client];
    if (c.jobs.size() + c.reserved < max_) {
      ++c.reserved;
      reserved = true;
    } else {
      known = c.jobs;
    }
  }
  if (sweep) Sweep();
  if (reserved) return absl::OkStatus();
  // Full: forget the jobs that finished, asking without the lock.
  const std::vector<JobId> running = unfinished_(known);
  const absl::flat_hash_set<JobId> still(running.begin(), running.end());
  const absl::flat_hash_set<JobId> asked(known.begin(), known.end());
  absl::MutexLock lock(&mu_);
  Client& c = clients_[client];
  // Jobs committed meanwhile were not asked about and stay.
  std::erase_if(c.jobs, [&](JobId id) {
    return asked.contains(id) && !still.contains(id);
  });
  if (c.jobs.size() + c.reserved < max_) {
    ++c.reserved;
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "client ", client, " has ", c.jobs.size() + c.reserved,
      " unfinished jobs, the most allowed (--max-jobs-per-client=", max_,
      "); wait for one to finish"));
}

void ClientQuota::Commit(const std::string& client, JobId job) {
  if (max_ == 0) return;
  absl::MutexLock lock(&mu_);
  Client& c = clients_[client];
  if (c.reserved > 0) --c.reserved;
  c.jobs.push_back(job);
}

void ClientQuota::Cancel(const std::string& client) {
  if (max_ == 0) return;
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  if (it->second.reserved > 0) --it->second.reserved;
  if (it->second.jobs.empty() && it->second.reserved == 0) clients_.erase(it);
}

size_t ClientQuota::tracked_clients() const {
  absl::MutexLock lock(&mu_);
  return clients_.size();
}

void ClientQuota::Sweep() {
  std::vector<JobId> known;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, c] : clients_) {
      known.insert(known.end(), c.jobs.begin(), c.jobs.end());
    }
  }
  // Asked without the lock, as in Reserve().
  const std::vector<JobId> running = unfinished_(known);
  const absl::flat_hash_set<JobId> still(running.begin(), running.end());
  const absl::flat_hash_set<JobId> asked(known.begin(), known.end());
  absl::MutexLock lock(&mu_);
  for (auto it = clients_.begin(); it != clients_.end();) {
    Client& c = it->second;
    // Jobs committed meanwhile were not asked about and stay.
    std::erase_if(c.jobs, [&](JobId id) {
      return asked.contains(id) && !still.contains(id);
    });
    if (c.jobs.empty() && c.reserved == 0) {
      clients_.erase(it++);
    } else {
      ++it;
    }
  }
  sweep_at_ = std::max(kSweepAt, 2 * clients_.size());
  sweeping_ = false;
}

}  // namespace qfarm::coordinator
