// The coordinator's identifiers.
#pragma once

#include <cstdint>

namespace qfarm::coordinator {

// A job, from 1 up; never reused, also across restarts on one journal.
using JobId = uint64_t;
// One connection of a worker; never reused.
using WorkerKey = uint64_t;

}  // namespace qfarm::coordinator
