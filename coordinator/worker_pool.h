// The scheduler's connected workers: what each said of itself (the kinds it
// offers among it), its credits (tasks it may still be sent), when it was
// last heard from, and the tasks whose current attempt runs on it. Also the
// turn order in which workers with credits are served, and which kinds some
// connected worker offers.
//
// Part of the Scheduler (coordinator/scheduler.h), under its mutex:
// thread-compatible.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "coordinator/ids.h"
#include "coordinator/task_queue.h"

namespace qfarm::coordinator {

// Fields default to empty, so designated initializers may omit any.
struct WorkerDesc {
  std::string worker_id = {};
  std::string mode = {};
  uint32_t slots = 0;
  std::string peer = {};
  // Valid kind names, without repeats.
  std::vector<std::string> kinds = {};
};

struct Worker {
  WorkerKey key = 0;
  WorkerDesc desc;
  int64_t connected_us = 0;
  // When it last sent anything.
  int64_t heard_us = 0;
  // The kinds of desc.kinds, ascending.
  std::vector<KindId> kinds;
  // For each of `kinds`, its index in the worker's hello (the kind table of
  // the tasks it is sent, v1::Task.kind_index).
  std::vector<uint32_t> hello_index;
  // Tasks it may still be sent.
  uint64_t credits = 0;
  // Results accepted from it.
  uint64_t completed = 0;
  // Tasks whose current attempt runs on it.
  absl::flat_hash_set<TaskRef> running;

  // The hello index of `kind`, one of `kinds`.
  uint32_t HelloIndex(KindId kind) const {
    const size_t j = static_cast<size_t>(
        std::lower_bound(kinds.begin(), kinds.end(), kind) - kinds.begin());
    return j < kinds.size() ? hello_index[j] : 0;
  }
};

// A kind a worker offers, and its index in the worker's hello.
struct OfferedKind {
  KindId id = 0;
  uint32_t hello_index = 0;
};

class WorkerPool {
 public:
  // A new connection offering `kinds` (desc.kinds' ids; repeats count
  // once), heard from at `now_us`; a worker without an id is named
  // "worker-<key>". Keys increase from 1 and are never reused.
  WorkerKey Add(WorkerDesc desc, std::vector<OfferedKind> kinds,
                int64_t now_us);
  // Null for an unknown key.
  Worker* Find(WorkerKey key) {
    auto it = workers_.find(key);
    return it == workers_.end() ? nullptr : it->second.get();
  }
  // Takes the worker out; null for an unknown key.
  std::unique_ptr<Worker> Remove(WorkerKey key);

  // Keys of the workers not heard from for more than `timeout_us`, in key
  // order.
  std::vector<WorkerKey> Silent(int64_t now_us, int64_t timeout_us) const;

  // The workers with credits, in key order from just after the first one
  // served by the previous call, so no worker is always served first.
  std::vector<Worker*> TakeTurns();

  // Whether some connected worker offers `kind`.
  bool Offered(KindId kind) const {
    return kind < offered_.size() && offered_[kind] > 0;
  }

  bool empty() const { return workers_.empty(); }
  size_t size() const { return workers_.size(); }
  // In key order, that is in connection order.
  const std::map<WorkerKey, std::unique_ptr<Worker>>& all() const {
    return workers_;
  }

 private:
  WorkerKey next_key_ = 1;
  std::map<WorkerKey, std::unique_ptr<Worker>> workers_;
  // Where the next TakeTurns() starts.
  WorkerKey next_first_ = 0;
  // By KindId: the connected workers that offer it.
  std::vector<uint32_t> offered_;
};

}  // namespace qfarm::coordinator
