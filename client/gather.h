// Results gathered into input order, for the calls that return a job's
// results as a vector (FarmClient::Map, FarmSession::Run).
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::client {

using ResultCallback = std::function<void(v1::TaskResult&&)>;

// Calls `run` with a callback that places each result at its index, and
// returns the `count` results, or `run`'s error, or INTERNAL if the job
// ended without a result for every index.
absl::StatusOr<std::vector<v1::TaskResult>> GatherInOrder(
    size_t count,
    const std::function<absl::Status(const ResultCallback&)>& run);

}  // namespace qfarm::client
