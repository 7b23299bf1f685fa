#include "tests/chaos_harness.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/farm_client.h"
#include "common/grpc_options.h"
#include "tests/time_scale.h"

namespace qfarm::testing {
namespace {

constexpr const char* kScenarioNames[kChaosScenarios] = {
    "worker-kills", "after-submit",  "after-session",      "coordinator-twice",
    "with-worker",  "freeze-worker", "freeze-coordinator", "mixed"};

constexpr const char* kModes[4] = {"serial", "thread", "async", "auto"};

int ModeIndex(const std::string& mode) {
  for (int i = 0; i < 4; ++i) {
    if (mode == kModes[i]) return i;
  }
  return 1;
}

class PlanRng {
 public:
  explicit PlanRng(uint64_t seed) : rng_(seed) {}
  int Uniform(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  uint32_t Next() { return static_cast<uint32_t>(rng_()); }
  WorkerSpec Worker(const std::string& id) {
    WorkerSpec spec;
    spec.id = id;
    spec.mode = kModes[Uniform(0, 3)];
    if (spec.mode == "serial") {
      spec.slots = 1;
    } else if (spec.mode == "thread") {
      spec.slots = Uniform(2, 8);
    } else {
      spec.slots = Uniform(8, 32);
    }
    return spec;
  }

 private:
  std::mt19937_64 rng_;
};

std::string Ms(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d), "ms");
}

std::string DescribeWorker(const WorkerSpec& w) {
  return absl::StrCat(w.id, " ", w.mode, "/", w.slots);
}

std::string DescribeEvent(const ChaosEvent& e) {
  switch (e.action) {
    case ChaosAction::kKillWorker:
      return absl::StrCat("kill a worker @", Ms(e.at), " (then ",
                          DescribeWorker(e.replacement), ")");
    case ChaosAction::kKillCoordinator:
      return absl::StrCat("kill the coordinator @", Ms(e.at));
    case ChaosAction::kKillCoordinatorAndWorker:
      return absl::StrCat("kill the coordinator and a worker @", Ms(e.at),
                          " (then ", DescribeWorker(e.replacement), ")");
    case ChaosAction::kFreezeWorker:
      return absl::StrCat("freeze a worker ", Ms(e.freeze), " @", Ms(e.at));
    case ChaosAction::kFreezeCoordinator:
      return absl::StrCat("freeze the coordinator ", Ms(e.freeze), " @",
                          Ms(e.at));
  }
  return "?";
}

}  // namespace

void ChaosCounts::Add(const ChaosCounts& o) {
  for (int i = 0; i < 4; ++i) worker_kills[i] += o.worker_kills[i];
  coordinator_kills += o.coordinator_kills;
  kills_after_submit_ack += o.kills_after_submit_ack;
  kills_after_session_ack += o.kills_after_session_ack;
  kills_with_worker += o.kills_with_worker;
  worker_freezes += o.worker_freezes;
  coordinator_freezes += o.coordinator_freezes;
  skipped += o.skipped;
  tasks += o.tasks;
  results_read += o.results_read;
  lost += o.lost;
  duplicated += o.duplicated;
  wrong += o.wrong;
}

int ChaosCounts::worker_kills_total() const {
  return worker_kills[0] + worker_kills[1] + worker_kills[2] + worker_kills[3];
}

ChaosPlan MakeChaosPlan(uint64_t seed) {
  PlanRng rng(seed);
  ChaosPlan plan;
  plan.seed = seed;
  const int scenario = static_cast<int>(seed % kChaosScenarios);
  plan.scenario = kScenarioNames[scenario];
  int total_slots = 0;
  for (int i = 1; i <= 3; ++i) {
    plan.workers.push_back(rng.Worker(absl::StrCat("w", i)));
    total_slots += plan.workers.back().slots;
  }
  plan.journal_sync = rng.Uniform(0, 1) == 0 ? "full" : "normal";
  // Two jobs of sleeps that keep every slot busy for about two seconds
  // together, whatever the slots (distinct durations: a result filed under
  // the wrong index has the wrong value).
  const int sleeps = std::clamp(4 * total_slots, 12, 200);
  const int target_ms = 2000;
  const int step = std::max(1, (target_ms * total_slots / 2 - sleeps * 20) /
                                   (sleeps * (sleeps - 1) / 2));
  plan.submit_job = {.echoes = 150,
                     .sleeps = sleeps,
                     .min_sleep_ms = 20,
                     .sleep_step_ms = step,
                     .cpus = 8,
                     .min_cpu_units = 1000};
  plan.session_job = plan.submit_job;
  plan.session_job.min_cpu_units = 2000;

  auto event = [&](ChaosAction action) {
    ChaosEvent e;
    e.at = absl::Milliseconds(rng.Uniform(0, 1800));
    e.action = action;
    e.victim = rng.Next();
    if (action == ChaosAction::kKillWorker ||
        action == ChaosAction::kKillCoordinatorAndWorker) {
      e.replacement = rng.Worker("");  // Named below, in time order.
    }
    if (action == ChaosAction::kFreezeWorker ||
        action == ChaosAction::kFreezeCoordinator) {
      e.freeze = absl::Milliseconds(rng.Uniform(300, 2500));
    }
    plan.events.push_back(e);
  };
  switch (scenario) {
    case 0:
      for (int i = rng.Uniform(2, 4); i > 0; --i) {
        event(ChaosAction::kKillWorker);
      }
      break;
    case 1:
      plan.kill_after_submit_ack = true;
      if (rng.Uniform(0, 1) == 1) event(ChaosAction::kKillWorker);
      break;
    case 2:
      plan.kill_after_session_ack = true;
      if (rng.Uniform(0, 1) == 1) event(ChaosAction::kKillWorker);
      break;
    case 3:
      event(ChaosAction::kKillCoordinator);
      event(ChaosAction::kKillCoordinator);
      break;
    case 4:
      event(ChaosAction::kKillCoordinatorAndWorker);
      event(ChaosAction::kKillWorker);
      break;
    case 5:
      for (int i = rng.Uniform(1, 2); i > 0; --i) {
        event(ChaosAction::kFreezeWorker);
      }
      break;
    case 6:
      event(ChaosAction::kFreezeCoordinator);
      if (rng.Uniform(0, 1) == 1) event(ChaosAction::kKillWorker);
      break;
    default:
      plan.kill_after_submit_ack = rng.Uniform(0, 3) == 0;
      plan.kill_after_session_ack = rng.Uniform(0, 3) == 0;
      for (int i = rng.Uniform(3, 5); i > 0; --i) {
        event(static_cast<ChaosAction>(rng.Uniform(0, 4)));
      }
  }
  std::stable_sort(
      plan.events.begin(), plan.events.end(),
      [](const ChaosEvent& a, const ChaosEvent& b) { return a.at < b.at; });
  int next_worker = 4;
  for (ChaosEvent& e : plan.events) {
    if (!e.replacement.mode.empty()) {
      e.replacement.id = absl::StrCat("w", next_worker++);
    }
  }
  return plan;
}

std::string DescribePlan(const ChaosPlan& plan) {
  std::vector<std::string> workers;
  for (const WorkerSpec& w : plan.workers) workers.push_back(DescribeWorker(w));
  std::vector<std::string> events;
  if (plan.kill_after_submit_ack) {
    events.push_back("kill the coordinator after SubmitJob's answer");
  }
  if (plan.kill_after_session_ack) {
    events.push_back("kill the coordinator after the Session's acceptance");
  }
  for (const ChaosEvent& e : plan.events) events.push_back(DescribeEvent(e));
  const JobShape& j = plan.submit_job;
  return absl::StrCat("seed=", plan.seed, " [", plan.scenario, "] workers ",
                      absl::StrJoin(workers, ", "),
                      "; journal-sync=", plan.journal_sync, "; 2 jobs of ",
                      j.echoes + j.sleeps + j.cpus, " tasks (", j.sleeps,
                      " sleeps ", j.min_sleep_ms, "..",
                      j.min_sleep_ms + (j.sleeps - 1) * j.sleep_step_ms,
                      "ms); ", absl::StrJoin(events, ", "));
}

IterationOutcome RunChaosIteration(const ChaosPlan& plan,
                                   const ChaosOptions& options) {
  IterationOutcome out;
  ChaosCounts& counts = out.counts;
  const absl::Time start = absl::Now();
  auto note = [&](const std::string& what) {
    absl::StrAppend(&out.timeline, "  ", Ms(absl::Now() - start), " ", what,
                    "\n");
  };
  auto fail = [&](const std::string& why) {
    absl::StrAppend(&out.failure, why, "\n");
    note(absl::StrCat("FAILED: ", why));
  };

  auto started = LocalFarm::Start(
      plan.workers,
      {"--journal-sync=" + plan.journal_sync, "--heartbeat-timeout=1s",
       "--max-attempts=100", "--retry-backoff=20ms"});
  if (!started.ok()) {
    out.failure =
        absl::StrCat("farm did not start: ", started.status().message());
    out.elapsed = absl::Now() - start;
    return out;
  }
  LocalFarm& farm = **started;
  absl::flat_hash_map<std::string, std::string> mode_of;
  for (const WorkerSpec& w : plan.workers) mode_of[w.id] = w.mode;
  note("farm up");

  std::shared_ptr<v1::Farm::Stub> stub =
      v1::Farm::NewStub(MakeChannel(farm.address()));
  std::unique_ptr<client::FarmClient> client =
      client::FarmClient::Create({.address = farm.address()});
  ResultLedger ledger;
  std::mt19937_64 task_rng(plan.seed * 0x9E3779B97F4A7C15ull + 1);
  const std::vector<v1::Task> submit_tasks = DistinctTasks(
      absl::StrCat("s", plan.seed, "-submit"), plan.submit_job, task_rng);
  const std::vector<v1::Task> session_tasks = DistinctTasks(
      absl::StrCat("s", plan.seed, "-session"), plan.session_job, task_rng);
  const absl::Time give_up = absl::Now() + Scaled(options.deadline);

  auto restart = [&](const std::string& why) {
    ++counts.coordinator_kills;
    absl::Status restarted = farm.RestartCoordinator();
    note(absl::StrCat("coordinator killed (", why, ") and restarted",
                      restarted.ok() ? "" : ": ", restarted.message()));
    if (!restarted.ok()) fail(absl::StrCat("restart: ", restarted.message()));
    return restarted.ok();
  };

  // SubmitJob, watched by a thread of its own through every restart.
  absl::StatusOr<uint64_t> submit_job = client->SubmitJob(submit_tasks);
  std::thread submit_watcher;
  absl::Status submit_watch = absl::UnknownError("not watched");
  if (!submit_job.ok()) {
    fail(absl::StrCat("SubmitJob: ", submit_job.status().ToString()));
  } else {
    ledger.AddJob(*submit_job, submit_tasks);
    note(absl::StrCat("SubmitJob answered: job ", *submit_job));
    if (plan.kill_after_submit_ack) {
      ++counts.kills_after_submit_ack;
      restart("right after SubmitJob's answer");
    }
    submit_watcher = std::thread([&] {
      submit_watch = WatchRaw(stub.get(), *submit_job, &ledger, give_up);
    });
  }

  // The Session: half-closed once its job is accepted, so it ends OK when
  // the job finishes (or UNAVAILABLE when the coordinator is killed).
  // Right after a restart the channel may still hold the killed
  // coordinator's connection: a call opened on it ends UNAVAILABLE before
  // reaching the new one. Such a call is opened again (and the check below
  // makes sure the failed one left no job behind).
  std::unique_ptr<RawSession> session;
  absl::StatusOr<uint64_t> session_job;
  int session_calls = 0;
  do {
    session = std::make_unique<RawSession>(
        stub.get(), &ledger, absl::StrCat("Session call ", ++session_calls));
    session->Send(1, session_tasks);
    session_job =
        session->WaitAccepted(1, absl::Now() + Scaled(absl::Seconds(30)));
    session->WritesDone();
    if (!session_job.ok()) {
      note(absl::StrCat("Session call ", session_calls,
                        " failed: ", session_job.status().ToString()));
    }
  } while (!session_job.ok() &&
           session_job.status().code() == absl::StatusCode::kUnavailable &&
           session_calls < 3);
  if (session_job.ok() && submit_job.ok()) {
    for (uint64_t id = *submit_job + 1; id < *session_job; ++id) {
      absl::StatusOr<v1::JobInfo> stray = client->GetJob(id);
      if (stray.status().code() != absl::StatusCode::kNotFound) {
        fail(absl::StrCat("job ", id,
                          " exists, yet no call was answered "
                          "with its id: ",
                          stray.status().ToString()));
      }
    }
  }
  if (!session_job.ok()) {
    fail(absl::StrCat("Session job: ", session_job.status().ToString()));
  } else {
    note(absl::StrCat("Session accepted: job ", *session_job));
    if (plan.kill_after_session_ack) {
      ++counts.kills_after_session_ack;
      restart("right after the Session's acceptance");
    }
  }

  auto all_done = [&] {
    return submit_job.ok() && session_job.ok() &&
           ledger.Complete(*submit_job) && ledger.Complete(*session_job);
  };
  const absl::Time t0 = absl::Now();
  for (const ChaosEvent& e : plan.events) {
    if (!out.failure.empty()) break;
    // Pacing: strike at the planned time, unless the jobs are done.
    while (absl::Now() < t0 + e.at && !all_done()) {
      absl::SleepFor(std::min(absl::Milliseconds(10), t0 + e.at - absl::Now()));
    }
    if (all_done()) {
      ++counts.skipped;
      note(absl::StrCat("skipped (jobs done): ", DescribeEvent(e)));
      continue;
    }
    const std::vector<std::string> ids = farm.worker_ids();
    const std::string victim = ids.empty() ? "" : ids[e.victim % ids.size()];
    switch (e.action) {
      case ChaosAction::kKillWorker: {
        ++counts.worker_kills[ModeIndex(mode_of[victim])];
        farm.KillWorker(victim);
        note(
            absl::StrCat("worker ", victim, " (", mode_of[victim], ") killed"));
        absl::Status s = farm.StartWorker(e.replacement);
        mode_of[e.replacement.id] = e.replacement.mode;
        if (!s.ok()) fail(absl::StrCat("start worker: ", s.message()));
        break;
      }
      case ChaosAction::kKillCoordinatorAndWorker: {
        ++counts.worker_kills[ModeIndex(mode_of[victim])];
        ++counts.kills_with_worker;
        farm.worker(victim)->Signal(SIGKILL);
        farm.coordinator()->Signal(SIGKILL);
        farm.KillWorker(victim);
        note(absl::StrCat("worker ", victim, " (", mode_of[victim],
                          ") killed with the coordinator"));
        restart("with a worker");
        absl::Status s = farm.StartWorker(e.replacement);
        mode_of[e.replacement.id] = e.replacement.mode;
        if (!s.ok()) fail(absl::StrCat("start worker: ", s.message()));
        break;
      }
      case ChaosAction::kKillCoordinator:
        restart("mid-job");
        break;
      case ChaosAction::kFreezeWorker: {
        ++counts.worker_freezes;
        Subprocess* w = farm.worker(victim);
        w->Signal(SIGSTOP);
        note(absl::StrCat("worker ", victim, " frozen"));
        absl::SleepFor(e.freeze);  // Chaos pacing: how long it stays frozen.
        w->Signal(SIGCONT);
        note(absl::StrCat("worker ", victim, " thawed"));
        break;
      }
      case ChaosAction::kFreezeCoordinator: {
        ++counts.coordinator_freezes;
        farm.coordinator()->Signal(SIGSTOP);
        note("coordinator frozen");
        absl::SleepFor(e.freeze);  // Chaos pacing, as above.
        farm.coordinator()->Signal(SIGCONT);
        note("coordinator thawed");
        break;
      }
    }
  }

  // The Session's job: read to its end on the Session, or, when the call
  // was cut by a coordinator kill, by WatchJob.
  if (session_job.ok()) {
    absl::Status ended = session->WaitEnded(give_up);
    note(absl::StrCat("Session ended: ", ended.ToString()));
    if (ended.ok()) {
      if (!session->Finished(1)) {
        fail("the Session ended OK before its job's last response");
      }
    } else if (ended.code() == absl::StatusCode::kUnavailable &&
               counts.coordinator_kills > 0) {
      absl::Status watched =
          WatchRaw(stub.get(), *session_job, &ledger, give_up);
      if (!watched.ok()) fail(absl::StrCat("watch: ", watched.ToString()));
    } else {
      fail(absl::StrCat("Session: ", ended.ToString()));
    }
  }
  session.reset();
  if (submit_watcher.joinable()) {
    submit_watcher.join();
    note(absl::StrCat("WatchJob ended: ", submit_watch.ToString()));
    if (!submit_watch.ok()) {
      fail(absl::StrCat("watch: ", submit_watch.ToString()));
    }
  }
  // A new watcher reads each whole job again, once each, the same results.
  for (const absl::StatusOr<uint64_t>* job : {&submit_job, &session_job}) {
    if (!job->ok() || !out.failure.empty()) continue;
    absl::Status again = WatchRaw(stub.get(), **job, &ledger, give_up);
    if (!again.ok()) fail(absl::StrCat("second watch: ", again.ToString()));
  }

  const ResultLedger::Stats stats = ledger.stats();
  counts.tasks = submit_tasks.size() + session_tasks.size();
  counts.results_read = stats.read;
  counts.lost = stats.missing;
  counts.duplicated = stats.duplicated;
  counts.wrong = stats.wrong + stats.other;
  if (ledger.problem_count() > 0 || stats.missing > 0) {
    fail(ledger.Report());
  }
  // Every worker, replacements included, is connected again before the
  // stop (a process sent SIGTERM before its main() has run dies of it).
  absl::Status connected =
      farm.WaitForWorkers(farm.worker_ids().size(), Scaled(absl::Seconds(30)));
  if (!connected.ok()) {
    fail(absl::StrCat("workers did not come back: ",
                      connected.message().substr(0, 2000)));
  }
  absl::Status stopped = farm.Stop(Scaled(absl::Seconds(30)));
  note(absl::StrCat("farm stopped: ", stopped.ok() ? "OK" : "FAILED"));
  if (!stopped.ok()) {
    fail(
        absl::StrCat("the farm did not stop cleanly (every process must "
                     "exit 0 on SIGTERM): ",
                     stopped.message().substr(0, 2000)));
  }
  out.ok = out.failure.empty();
  if (!out.ok) {
    const std::string kept =
        absl::StrCat(options.keep_logs_under, "/qfarm-chaos-", plan.seed);
    std::error_code error;
    std::filesystem::remove_all(kept, error);
    std::filesystem::copy(farm.log_dir(), kept,
                          std::filesystem::copy_options::recursive, error);
    absl::StrAppend(&out.failure,
                    "logs and journal: ", error ? error.message() : kept, "\n");
  }
  out.elapsed = absl::Now() - start;
  return out;
}

}  // namespace qfarm::testing
