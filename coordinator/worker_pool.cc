#include "coordinator/worker_pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace qfarm::coordinator {

WorkerKey WorkerPool::Add(WorkerDesc desc, std::vector<OfferedKind> kinds,
                          int64_t now_us) {
  auto worker = std::make_unique<Worker>();
  const WorkerKey key = next_key_++;
  worker->key = key;
  worker->desc = std::move(desc);
  std::stable_sort(
      kinds.begin(), kinds.end(),
      [](const OfferedKind& a, const OfferedKind& b) { return a.id < b.id; });
  for (const OfferedKind& kind : kinds) {
    if (!worker->kinds.empty() && worker->kinds.back() == kind.id) continue;
    if (kind.id >= offered_.size()) offered_.resize(kind.id + 1);
    ++offered_[kind.id];
    worker->kinds.push_back(kind.id);
    worker->hello_index.push_back(kind.hello_index);
  }
  worker->connected_us = now_us;
  worker->heard_us = now_us;
  // The name the shell gives a worker that sent none.
  if (worker->desc.worker_id.empty()) {
    worker->desc.worker_id = absl::StrCat("worker-", key);
  }
  workers_.emplace(key, std::move(worker));
  return key;
}

std::unique_ptr<Worker> WorkerPool::Remove(WorkerKey key) {
  auto it = workers_.find(key);
  if (it == workers_.end()) return nullptr;
  std::unique_ptr<Worker> worker = std::move(it->second);
  workers_.erase(it);
  for (KindId kind : worker->kinds) --offered_[kind];
  return worker;
}

std::vector<WorkerKey> WorkerPool::Silent(int64_t now_us,
                                          int64_t timeout_us) const {
  std::vector<WorkerKey> silent;
  for (const auto& [key, worker] : workers_) {
    if (now_us - worker->heard_us > timeout_us) silent.push_back(key);
  }
  return silent;
}

std::vector<Worker*> WorkerPool::TakeTurns() {
  std::vector<Worker*> ready;
  const auto start = workers_.lower_bound(next_first_);
  for (auto it = start; it != workers_.end(); ++it) {
    if (it->second->credits > 0) ready.push_back(it->second.get());
  }
  for (auto it = workers_.begin(); it != start; ++it) {
    if (it->second->credits > 0) ready.push_back(it->second.get());
  }
  if (!ready.empty()) next_first_ = ready.front()->key + 1;
  return ready;
}

}  // namespace qfarm::coordinator
