// The in-process pool behind `qfarm --local`: the same executors a worker
// uses, without a coordinator, so local and cross-process pools compare on
// equal terms.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "client/interrupt.h"
#include "executors/executor.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::client {

struct LocalPoolOptions {
  executors::Mode mode = executors::Mode::kThread;
  int slots = 4;
  // When fired, the tasks not yet finished are cancelled. May be null.
  Interrupt* interrupt = nullptr;
  // The kinds it runs (qfarm/kinds.h); null: the built-in kinds. Must
  // outlive the run.
  const Kinds* kinds = nullptr;
  // Most tasks handed to the executor whose results have not come back; the
  // rest wait here, so a job of millions of tasks does not hold them all in
  // the executor's queue. 0: max(2 x slots, 65,536).
  size_t window = 0;
};

// Runs the tasks as job 0 on a fresh executor and calls `on_result` for
// each, in completion order, on the calling thread. Returns when all are
// done.
absl::Status RunLocal(const std::vector<v1::Task>& tasks,
                      const LocalPoolOptions& options,
                      const std::function<void(v1::TaskResult&&)>& on_result);

// As RunLocal(), handing over the results a batch at a time (every result
// that arrived since the last call), which costs less per task. The
// callback may move from the results. The tasks are moved into the
// executor's messages rather than copied, and other messages take their
// place: on return `tasks` has its size but unspecified contents.
absl::Status RunLocalBatches(
    std::vector<v1::Task>&& tasks, const LocalPoolOptions& options,
    const std::function<void(std::vector<v1::TaskResult>& batch)>& on_results);

}  // namespace qfarm::client
