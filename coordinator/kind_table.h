// The scheduler's task kinds: each kind name in use gets a small id (KindId)
// that the queue, the workers and the tasks carry instead of the name. A
// kind is in use while it has references: tasks of it that are not final,
// and connected workers that offer it; once it has none it is forgotten,
// and its id may be given to another name. The table also counts each
// kind's final results, for metrics.
//
// Part of the Scheduler (coordinator/scheduler.h), under its mutex:
// thread-compatible.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/ids.h"

namespace qfarm::coordinator {

// Final results by TaskState number.
using StateCounts = std::array<uint64_t, 8>;

class KindTable {
 public:
  // Most kinds in use at once that tasks may bring (workers' kinds are
  // always taken in).
  static constexpr size_t kMaxTaskKinds = 10'000;
  // Kind names whose counts are kept after they are forgotten; the counts
  // of later ones are kept under "other".
  static constexpr size_t kMaxRetiredNames = 1'000;

  // The id of `name`, with `refs` more references. For a name not in use,
  // `for_tasks` refuses it with RESOURCE_EXHAUSTED when kMaxTaskKinds are in
  // use. `name` is a valid kind name.
  absl::StatusOr<KindId> Acquire(absl::string_view name, uint64_t refs,
                                 bool for_tasks);
  // The id of a name in use; kNoKind otherwise.
  KindId Find(absl::string_view name) const;
  // Drops `refs` references; returns whether the kind is now forgotten.
  // Inline for the common case, a kind still in use (a task's result).
  bool Release(KindId id, uint64_t refs = 1) {
    Entry& entry = entries_[id];
    if (entry.refs > refs) {
      entry.refs -= refs;
      return false;
    }
    return ReleaseLast(id, refs);
  }

  const std::string& name(KindId id) const { return entries_[id].name; }
  // Counts a final result of a task of `id`.
  void CountFinished(KindId id, size_t state) {
    ++entries_[id].finished[state & 7];
  }
  // Final results by kind name, forgotten kinds included.
  std::map<std::string, StateCounts> Finished() const;
  // Kinds in use.
  size_t size() const { return ids_.size(); }

 private:
  struct Entry {
    std::string name;
    uint64_t refs = 0;
    StateCounts finished = {};
  };

  // Release() of the last references (or more than there are: a bug).
  bool ReleaseLast(KindId id, uint64_t refs);

  std::vector<Entry> entries_;
  absl::flat_hash_map<std::string, KindId> ids_;
  // Ids of forgotten kinds, to reuse.
  std::vector<KindId> free_;
  // Counts of forgotten kinds.
  std::map<std::string, StateCounts> retired_;
};

}  // namespace qfarm::coordinator
