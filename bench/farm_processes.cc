#include "bench/farm_processes.h"

#include <signal.h>

#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/farm_client.h"

namespace qfarm::bench {
namespace {

constexpr absl::string_view kListening = "qfarm-coordinator listening on ";
constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr absl::Duration kStopGrace = absl::Seconds(30);

}  // namespace

absl::StatusOr<std::unique_ptr<FarmProcesses>> FarmProcesses::Start(
    const FarmSpec& spec) {
  std::unique_ptr<FarmProcesses> farm(new FarmProcesses);
  std::vector<std::string> argv = {spec.bin_dir + "/qfarm-coordinator",
                                   "--listen=127.0.0.1:0"};
  argv.insert(argv.end(), spec.coordinator_flags.begin(),
              spec.coordinator_flags.end());
  const std::string coordinator_log = spec.log_dir + "/coordinator.log";
  absl::StatusOr<std::unique_ptr<ChildProcess>> coordinator =
      ChildProcess::Start(
          argv, {.stderr_path = coordinator_log, .pipe_stdout = true});
  if (!coordinator.ok()) return coordinator.status();
  farm->coordinator_ = *std::move(coordinator);
  absl::StatusOr<std::string> line =
      farm->coordinator_->ReadLine(kStartTimeout);
  if (!line.ok() || !absl::StartsWith(*line, kListening)) {
    return absl::UnavailableError(
        absl::StrCat("qfarm-coordinator did not start (",
                     line.ok() ? *line : line.status().message(), "); see ",
                     coordinator_log));
  }
  farm->address_ = line->substr(kListening.size());

  for (int i = 1; i <= spec.workers; ++i) {
    const std::string id = absl::StrCat("worker-", i);
    absl::StatusOr<std::unique_ptr<ChildProcess>> worker = ChildProcess::Start(
        {spec.worker_binary.empty() ? spec.bin_dir + "/qfarm-worker"
                                    : spec.worker_binary,
         absl::StrCat("--coordinator=", farm->address_),
         absl::StrCat("--mode=", spec.mode),
         absl::StrCat("--slots=", spec.slots), absl::StrCat("--id=", id)},
        {.stderr_path = absl::StrCat(spec.log_dir, "/", id, ".log")});
    if (!worker.ok()) return worker.status();
    farm->workers_.push_back(*std::move(worker));
  }
  if (spec.workers == 0) return farm;

  // Ready when the coordinator lists every worker.
  std::unique_ptr<client::FarmClient> client =
      client::FarmClient::Create({.address = farm->address_});
  const absl::Time deadline = absl::Now() + kStartTimeout;
  absl::Duration pause = absl::Milliseconds(2);
  while (true) {
    absl::StatusOr<std::vector<v1::WorkerInfo>> listed = client->ListWorkers();
    if (listed.ok() && listed->size() >= static_cast<size_t>(spec.workers)) {
      return farm;
    }
    for (const auto& worker : farm->workers_) {
      if (worker->WaitFor(absl::ZeroDuration()).ok()) {
        return absl::UnavailableError(
            absl::StrCat("a qfarm-worker exited at start; see ", spec.log_dir));
      }
    }
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          "only ", listed.ok() ? listed->size() : 0, " of ", spec.workers,
          " workers connected within ", absl::FormatDuration(kStartTimeout),
          "; see ", spec.log_dir));
    }
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(pause));
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
}

FarmProcesses::~FarmProcesses() { Stop(); }

std::vector<ProcessUsage> FarmProcesses::Snapshot() const {
  std::vector<ProcessUsage> out;
  auto add = [&out](const std::string& name, const ChildProcess& child) {
    absl::StatusOr<Usage> usage = ReadProcessUsage(child.pid());
    out.push_back({.name = name,
                   .pid = child.pid(),
                   .usage = usage.ok() ? *usage : Usage{}});
  };
  add("coordinator", *coordinator_);
  for (size_t i = 0; i < workers_.size(); ++i) {
    add(absl::StrCat("worker-", i + 1), *workers_[i]);
  }
  return out;
}

std::vector<ProcessUsage> FarmProcesses::Stop() {
  std::vector<ProcessUsage> out;
  if (stopped_) return out;
  stopped_ = true;
  // SIGTERM to every worker at once, then reap each.
  for (const auto& worker : workers_) worker->Signal(SIGTERM);
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->Stop(kStopGrace);
    out.push_back({.name = absl::StrCat("worker-", i + 1),
                   .pid = workers_[i]->pid(),
                   .usage = workers_[i]->lifetime_usage()});
  }
  if (coordinator_ != nullptr) {
    coordinator_->Stop(kStopGrace);
    out.insert(out.begin(), {.name = "coordinator",
                             .pid = coordinator_->pid(),
                             .usage = coordinator_->lifetime_usage()});
  }
  return out;
}

}  // namespace qfarm::bench
