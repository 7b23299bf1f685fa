// The in-process pool behind `qfarm --local`: the same executors a worker
// uses, without a coordinator, so local and cross-process pools compare on
// equal terms.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "client/interrupt.h"
#include "qfarm/v1/task.pb.h"
#include "worker/executor.h"

namespace qfarm::client {

struct LocalPoolOptions {
  worker::Mode mode = worker::Mode::kThread;
  int slots = 4;
  // When fired, the tasks not yet finished are cancelled. May be null.
  Interrupt* interrupt = nullptr;
};

// Runs the tasks as job 0 on a fresh executor and calls `on_result` for
// each, in completion order, on the calling thread. Returns when all are
// done.
absl::Status RunLocal(const std::vector<v1::Task>& tasks,
                      const LocalPoolOptions& options,
                      const std::function<void(v1::TaskResult&&)>& on_result);

}  // namespace qfarm::client
