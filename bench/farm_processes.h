// A farm that `qfarm bench` starts for one method: a qfarm-coordinator on
// 127.0.0.1 port 0 and N qfarm-worker processes of one mode, from the
// directory of the running binary. Stopped by PID: workers first (SIGTERM,
// they drain), then the coordinator.
//
//   auto farm = FarmProcesses::Start({.bin_dir = dir, .log_dir = logs,
//                                     .mode = "async", .workers = 2,
//                                     .slots = 1000});
//   ... FarmClient on (*farm)->address() ...
//   std::vector<ProcessUsage> now = (*farm)->Snapshot();
//   (*farm)->Stop();
//
// Thread-compatible.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/child_process.h"
#include "bench/report.h"

namespace qfarm::bench {

struct FarmSpec {
  std::string bin_dir;
  // The workers' binary; empty: bin_dir's qfarm-worker.
  std::string worker_binary = {};
  // The children's stderr goes to files here.
  std::string log_dir;
  std::string mode = "async";
  // 0: a coordinator alone.
  int workers = 1;
  int64_t slots = 1;
  std::vector<std::string> coordinator_flags;
};

class FarmProcesses {
 public:
  // Starts the coordinator, reads its address, starts the workers and waits
  // (up to 60 s) until the coordinator lists them all. UNAVAILABLE with the
  // log directory named when something does not come up.
  static absl::StatusOr<std::unique_ptr<FarmProcesses>> Start(
      const FarmSpec& spec);

  ~FarmProcesses();  // Stop().

  const std::string& address() const { return address_; }
  pid_t coordinator_pid() const { return coordinator_->pid(); }

  // Usage of every process now: "coordinator", "worker-1", ...
  std::vector<ProcessUsage> Snapshot() const;

  // Stops the workers, then the coordinator (SIGKILL after 30 s each).
  // Returns each process's lifetime usage. Idempotent.
  std::vector<ProcessUsage> Stop();

 private:
  FarmProcesses() = default;

  std::string address_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
  bool stopped_ = false;
};

}  // namespace qfarm::bench
