// qfarm-worker: dials a coordinator and runs the tasks it is sent (the
// built-in kinds), in one mode (serial, thread, async or auto). Reconnects
// with backoff while the coordinator is away; on SIGTERM or SIGINT stops
// taking work, lets running tasks finish within --drain-grace, and exits 0.
#include "worker/worker_main.h"

#include <string>
#include <vector>

#include "executors/kind_runner.h"

int main(int argc, char** argv) {
  return qfarm::worker::RunWorkerMain(
      std::vector<std::string>(argv + 1, argv + argc),
      qfarm::executors::BuiltInKinds(), "qfarm-worker");
}
