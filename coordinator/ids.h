// The coordinator's identifiers.
#pragma once

#include <cstdint>

namespace qfarm::coordinator {

// A job, from 1 up; never reused, also across restarts on one journal.
using JobId = uint64_t;
// One connection of a worker; never reused.
using WorkerKey = uint64_t;
// A task kind in use (coordinator/kind_table.h); reused once forgotten.
using KindId = uint32_t;
inline constexpr KindId kNoKind = ~KindId{0};

}  // namespace qfarm::coordinator
