// Tasks that name their kind by index in a kind table (v1::Task.kind_index)
// rather than by name: the form qfarm's clients send jobs in and the
// coordinator sends assignments in, which spares a name per task.
//
//   v1::SessionRequest request;
//   AppendTasksByKindIndex(tasks, *request.mutable_tasks(),
//                          *request.mutable_kinds());
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm {

// `to` = `from`, naming its kind by `kind_index` instead: every other field
// copied one by one, so that a reused `to` keeps its strings' allocations.
void CopyTaskByKindIndex(const v1::Task& from, uint32_t kind_index,
                         v1::Task& to);

// Appends a copy of each of `tasks` to `out`, naming its kind by its index
// in `kinds`, which gets each name not in it yet (in order of first use).
// `tasks` name their kinds by name: an empty one is put in the table as the
// empty name, which the coordinator refuses ("kind name is empty").
void AppendTasksByKindIndex(
    const std::vector<v1::Task>& tasks,
    google::protobuf::RepeatedPtrField<v1::Task>& out,
    google::protobuf::RepeatedPtrField<std::string>& kinds);

}  // namespace qfarm
