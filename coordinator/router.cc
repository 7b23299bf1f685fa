#include "coordinator/router.h"

#include <algorithm>
#include <utility>

namespace qfarm::coordinator {

void Router::AddWorker(WorkerKey key, std::shared_ptr<WorkerChannel> channel) {
  absl::Status close_status;
  {
    absl::MutexLock lock(&mu_);
    if (!closed_) {
      workers_[key] = std::move(channel);
      return;
    }
    close_status = close_status_;
  }
  channel->Close(close_status);
}

void Router::RemoveWorker(WorkerKey key) {
  absl::MutexLock lock(&mu_);
  workers_.erase(key);
}

void Router::CloseWorker(WorkerKey key, const absl::Status& status) {
  std::shared_ptr<WorkerChannel> channel;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(key);
    if (it == workers_.end()) return;
    channel = it->second;
  }
  channel->Close(status);
}

void Router::AddWatcher(JobId job, std::shared_ptr<JobWatcher> watcher) {
  absl::Status close_status;
  {
    absl::MutexLock lock(&mu_);
    if (!closed_) {
      watchers_[job].push_back(std::move(watcher));
      return;
    }
    close_status = close_status_;
  }
  watcher->Close(close_status);
}

void Router::RemoveWatcher(JobId job, const JobWatcher* watcher) {
  absl::MutexLock lock(&mu_);
  auto it = watchers_.find(job);
  if (it == watchers_.end()) return;
  auto& list = it->second;
  list.erase(std::remove_if(list.begin(), list.end(),
                            [watcher](const std::shared_ptr<JobWatcher>& w) {
                              return w.get() == watcher;
                            }),
             list.end());
  if (list.empty()) watchers_.erase(it);
}

void Router::Pump() {
  std::vector<Dispatch> dispatches = scheduler_->TakeDispatches();
  if (dispatches.empty()) return;
  std::vector<std::shared_ptr<WorkerChannel>> channels;
  channels.reserve(dispatches.size());
  {
    absl::MutexLock lock(&mu_);
    for (const Dispatch& d : dispatches) {
      auto it = workers_.find(d.worker);
      channels.push_back(it == workers_.end() ? nullptr : it->second);
    }
  }
  // A worker removed meanwhile had these tasks re-queued by the scheduler
  // (RemoveWorker runs before Router::RemoveWorker); dropping is safe.
  for (size_t i = 0; i < dispatches.size(); ++i) {
    if (channels[i] != nullptr) {
      channels[i]->SendTasks(std::move(dispatches[i].assignments));
    }
  }
}

void Router::WakeWatchers(const std::vector<JobId>& jobs) {
  std::vector<std::shared_ptr<JobWatcher>> to_wake;
  {
    absl::MutexLock lock(&mu_);
    for (JobId job : jobs) {
      auto it = watchers_.find(job);
      if (it == watchers_.end()) continue;
      to_wake.insert(to_wake.end(), it->second.begin(), it->second.end());
    }
  }
  for (auto& watcher : to_wake) watcher->Wake();
}

void Router::SendCancel(JobId job, const std::vector<WorkerKey>& workers) {
  std::vector<std::shared_ptr<WorkerChannel>> channels;
  {
    absl::MutexLock lock(&mu_);
    for (WorkerKey key : workers) {
      auto it = workers_.find(key);
      if (it != workers_.end()) channels.push_back(it->second);
    }
  }
  for (auto& channel : channels) channel->SendCancel(job);
}

void Router::CloseAll(const absl::Status& status) {
  absl::flat_hash_map<WorkerKey, std::shared_ptr<WorkerChannel>> workers;
  absl::flat_hash_map<JobId, std::vector<std::shared_ptr<JobWatcher>>> watchers;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    close_status_ = status;
    workers.swap(workers_);
    watchers.swap(watchers_);
  }
  for (auto& [key, channel] : workers) channel->Close(status);
  for (auto& [job, list] : watchers) {
    for (auto& watcher : list) watcher->Close(status);
  }
}

}  // namespace qfarm::coordinator
