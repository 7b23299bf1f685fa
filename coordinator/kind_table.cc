#include "coordinator/kind_table.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace qfarm::coordinator {
namespace {

void Add(StateCounts& to, const StateCounts& from) {
  for (size_t i = 0; i < to.size(); ++i) to[i] += from[i];
}

}  // namespace

absl::StatusOr<KindId> KindTable::Acquire(absl::string_view name, uint64_t refs,
                                          bool for_tasks) {
  if (auto it = ids_.find(name); it != ids_.end()) {
    entries_[it->second].refs += refs;
    return it->second;
  }
  if (for_tasks && ids_.size() >= kMaxTaskKinds) {
    return absl::ResourceExhaustedError(
        absl::StrCat("kind \"", name, "\" is one too many: ", ids_.size(),
                     " kinds are in use, the most the coordinator keeps"));
  }
  KindId id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<KindId>(entries_.size());
    entries_.emplace_back();
  }
  Entry& entry = entries_[id];
  entry.name = std::string(name);
  entry.refs = refs;
  entry.finished = {};
  ids_.emplace(entry.name, id);
  return id;
}

KindId KindTable::Find(absl::string_view name) const {
  auto it = ids_.find(name);
  return it == ids_.end() ? kNoKind : it->second;
}

bool KindTable::ReleaseLast(KindId id, uint64_t refs) {
  Entry& entry = entries_[id];
  QFARM_CHECK(entry.refs >= refs)
      << "kind " << entry.name << " released more than acquired";
  entry.refs -= refs;
  auto retired = retired_.find(entry.name);
  if (retired == retired_.end()) {
    retired = retired_
                  .try_emplace(retired_.size() < kMaxRetiredNames
                                   ? entry.name
                                   : std::string("other"))
                  .first;
  }
  Add(retired->second, entry.finished);
  ids_.erase(entry.name);
  entry.name.clear();
  free_.push_back(id);
  return true;
}

std::map<std::string, StateCounts> KindTable::Finished() const {
  std::map<std::string, StateCounts> out = retired_;
  for (const auto& [name, id] : ids_) Add(out[name], entries_[id].finished);
  return out;
}

}  // namespace qfarm::coordinator
