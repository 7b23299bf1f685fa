// A coordinator and workers started from the real binaries on port 0, for
// integration tests. Stops everything it started (by PID) when destroyed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/subprocess.h"

namespace qfarm::testing {

struct WorkerSpec {
  std::string id;
  std::string mode = "thread";
  int slots = 3;
  std::vector<std::string> extra_flags;
  // The worker's command before its flags; empty: qfarm-worker. (A worker
  // built with the SDK, or `python3 worker/python/seed_worker.py`, takes the
  // same flags.)
  std::vector<std::string> command = {};
};

class LocalFarm {
 public:
  // Starts a coordinator (with `coordinator_flags`; its journal goes to a
  // temp dir unless they say --data-dir or --ephemeral) and the workers,
  // and waits until the coordinator lists every worker. `client_flags` go
  // to every `qfarm` this farm runs (TLS, token).
  static absl::StatusOr<std::unique_ptr<LocalFarm>> Start(
      const std::vector<WorkerSpec>& workers,
      const std::vector<std::string>& coordinator_flags = {},
      const std::vector<std::string>& client_flags = {});

  ~LocalFarm();

  const std::string& address() const { return address_; }
  const std::string& log_dir() const { return dir_.path(); }

  absl::Status StartWorker(const WorkerSpec& spec);
  // Polls the coordinator's worker list until it holds `count` workers.
  absl::Status WaitForWorkers(size_t count, absl::Duration timeout);
  Subprocess* worker(const std::string& id);
  // The ids of the workers this farm runs (not killed), in id order.
  std::vector<std::string> worker_ids() const;
  // SIGKILLs the worker, reaps it and forgets it (Stop() then ignores it).
  void KillWorker(const std::string& id);
  // SIGKILLs the coordinator and starts it again on the same port with the
  // same flags (and so the same data dir).
  absl::Status RestartCoordinator();
  Subprocess* coordinator() { return coordinator_.get(); }

  // SIGTERM to every worker, then to the coordinator; returns OK when all
  // exited 0 within `timeout` each, else what went wrong.
  absl::Status Stop(absl::Duration timeout = absl::Seconds(20));

  // `qfarm --coordinator=ADDRESS ARGS...`.
  CommandResult Qfarm(const std::vector<std::string>& args,
                      const std::string& stdin_data = "") const;

  // Every log line the binaries wrote, for failure messages.
  std::string Logs() const;

 private:
  LocalFarm() = default;

  absl::Status StartCoordinator(const std::string& listen);

  TempDir dir_;
  std::vector<std::string> coordinator_flags_;
  std::vector<std::string> client_flags_;
  std::string address_;
  std::unique_ptr<Subprocess> coordinator_;
  std::map<std::string, std::unique_ptr<Subprocess>> workers_;
};

// One JSON Lines object of `qfarm --output=json` with its flat fields as
// text (strings unescaped, numbers as written).
using JsonObject = absl::flat_hash_map<std::string, std::string>;
absl::StatusOr<JsonObject> ParseFlatJson(const std::string& line);
absl::StatusOr<std::vector<JsonObject>> ParseJsonLines(const std::string& text);

}  // namespace qfarm::testing
