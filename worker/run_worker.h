// qfarm-worker in the foreground: checks what its command line asked, dials
// the coordinator and runs its tasks until SIGINT or SIGTERM, then drains.
//
//   WorkerCommand command;                 // filled from flags by main()
//   return RunWorker(command);
#pragma once

#include <string>

#include "absl/time/time.h"
#include "common/grpc_options.h"
#include "worker/liveness.h"
#include "worker/worker_link.h"

namespace qfarm::worker {

// What the command line asked for, before it is checked.
struct WorkerCommand {
  // coordinator, id, drain_grace; mode, slots and credentials come below.
  WorkerOptions options;
  // serial, thread, async or auto.
  std::string mode = "thread";
  // 0: the mode's default (executors::DefaultSlots()).
  int64_t slots = 0;
  TlsFiles tls;
  std::string token_file;
  // HOST:PORT of a Prometheus endpoint; empty: none.
  std::string metrics_listen;
  // HOST:PORT of a plaintext gRPC health service answering for the
  // worker's Liveness (liveness.h); empty: none.
  std::string health_listen;
  // Liveness::Options::unreachable_grace; must be positive.
  absl::Duration unreachable_grace = Liveness::Options().unreachable_grace;
};

// Call first thing in main(), before any thread starts. Prints
// "qfarm-worker metrics on HOST:PORT" and "qfarm-worker health on
// HOST:PORT" on stdout for the endpoints asked, with their real ports.
// Returns the exit code: 0 after a drain, 1 when an endpoint cannot start,
// 2 for a bad command line.
int RunWorker(WorkerCommand command);

}  // namespace qfarm::worker
