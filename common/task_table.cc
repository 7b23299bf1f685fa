#include "common/task_table.h"

#include <algorithm>

namespace qfarm {

void CopyTaskByKindIndex(const v1::Task& from, uint32_t kind_index,
                         v1::Task& to) {
  to.clear_kind();
  to.set_kind_index(kind_index);
  to.set_arg(from.arg());
  to.set_text(from.text());
  // Setting an empty string allocates one.
  if (!from.data().empty() || !to.data().empty()) to.set_data(from.data());
  to.set_timeout_ms(from.timeout_ms());
  to.set_max_attempts(from.max_attempts());
}

void AppendTasksByKindIndex(
    const std::vector<v1::Task>& tasks,
    google::protobuf::RepeatedPtrField<v1::Task>& out,
    google::protobuf::RepeatedPtrField<std::string>& kinds) {
  out.Reserve(out.size() + static_cast<int>(tasks.size()));
  // Jobs hold runs of one kind, and few kinds.
  int last = -1;
  for (const v1::Task& task : tasks) {
    if (last < 0 || kinds[last] != task.kind()) {
      auto it = std::find(kinds.begin(), kinds.end(), task.kind());
      if (it == kinds.end()) {
        kinds.Add(std::string(task.kind()));
        last = kinds.size() - 1;
      } else {
        last = static_cast<int>(it - kinds.begin());
      }
    }
    CopyTaskByKindIndex(task, static_cast<uint32_t>(last), *out.Add());
  }
}

}  // namespace qfarm
