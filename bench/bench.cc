#include "bench/bench.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/child_process.h"
#include "bench/report.h"
#include "bench/runners.h"
#include "bench/soak.h"
#include "bench/workload.h"
#include "common/abbreviate.h"
#include "common/auth.h"
#include "common/common_flags.h"
#include "common/flags.h"
#include "common/grpc_options.h"
#include "common/process.h"
#include "common/status_macros.h"
#include "executors/kind_runner.h"
#include "testing/http_test_server.h"

#ifndef QFARM_BENCH_SCRIPT
#define QFARM_BENCH_SCRIPT "seed_methods.py"
#endif

ABSL_FLAG(std::string, workload, qfarm::bench::WorkloadOptions().name,
          "seed, scale, echo, cpu, http, mixed, latency, queue, soak or "
          "custom");
ABSL_FLAG(std::string, spec, "",
          "with --workload=custom: the task, KIND:ARG (a kind of your own "
          "needs the bench of a binary that registers it, or --coordinator)");
ABSL_FLAG(std::string, methods, "",
          "comma-separated methods (local:MODE, farm:MODE[xN], py:NAME) or "
          "groups (local, farm, py, all)");
ABSL_FLAG(int64_t, tasks, 0,
          "tasks in the workload, or in each job of soak (0: its default)");
ABSL_FLAG(int64_t, jobs, 0, "soak: jobs, one after another (0: 200)");
ABSL_FLAG(absl::Duration, retain_finished,
          qfarm::bench::WorkloadOptions().retain_finished,
          "soak: the coordinator's --retain-finished");
ABSL_FLAG(absl::Duration, sleep, absl::ZeroDuration(),
          "the sleep of seed, scale and mixed, the server's delay for http (0: "
          "the workload's default)");
ABSL_FLAG(int64_t, cpu_units, 0, "SHA-256 iterations of a cpu task (0: 20000)");
ABSL_FLAG(std::string, payload, "", "the text of echo tasks (default x)");
ABSL_FLAG(bool, quick, false, "seed with 50ms sleeps instead of 1s");
ABSL_FLAG(int64_t, workers, 0,
          "worker processes of farm methods without xN (0: the workload's "
          "default)");
ABSL_FLAG(int64_t, runs, 1, "run each method N times and keep the median");
ABSL_FLAG(absl::Duration, max_ideal, absl::Seconds(60),
          "skip methods whose ideal wall time is longer");
ABSL_FLAG(bool, journal, false,
          "farm coordinators journal jobs and results to disk (durable); "
          "without it they run --ephemeral");
ABSL_FLAG(bool, python, false, "also run the seed's Python methods");
ABSL_FLAG(std::string, python_bin, "",
          "the Python interpreter (default /usr/bin/python3, then python3 on "
          "PATH)");
ABSL_FLAG(std::string, python_script, "",
          "bench/seed_methods.py (default: beside the binary, then the source "
          "tree)");
ABSL_FLAG(std::string, chart, "",
          "also write an SVG bar chart to FILE (soak: a line chart of RSS and "
          "journal size by job)");
ABSL_FLAG(std::string, chart_metric, "",
          "wall, tps or p50 (default: tps for echo, p50 for latency, wall "
          "otherwise)");

namespace qfarm::bench {
namespace {

constexpr char kUsage[] =
    R"(usage: qfarm bench [--workload=NAME] [--methods=LIST] [--workers=N]
                   [--slots=N] [--tasks=N] [--sleep=DURATION] [--quick]
                   [--python] [--runs=N] [--output=text|json|csv]
                   [--chart=FILE.svg] [--coordinator=HOST:PORT]
       qfarm bench --workload=soak [--jobs=N] [--tasks=N]
                   [--retain-finished=DURATION] [--output=text|json|csv]
                   [--chart=FILE.svg]

Runs one workload every way and prints one table: wall time against the
ideal for the method's slots, tasks/s, task latency (submit to result), CPU
time, voluntary and involuntary context switches per task (every process
involved), peak RSS, RSS per task in flight, and the most tasks that ran at
once. A progress line goes to stderr when it is a terminal.

Workloads (--tasks, --sleep, --cpu-units change the defaults):
  seed     10 x sleep 1s, the seed's question (--quick: 10 x 50ms)
  scale    10,000 x sleep 100ms at once (up to millions)
  echo     100,000 echo tasks: the overhead per task, tasks/s
  cpu      40 x cpu 20000 (iterated SHA-256)
  http     1,000 GETs of a local server that answers after 100ms
  mixed    sleep 100ms and cpu 20000 alternating, 200 tasks
  latency  2,000 echo tasks one at a time: the round trip
  queue    1,000,000 echo tasks queued on a coordinator with no workers:
           its memory per queued task
  soak     200 jobs (--jobs) x 100,000 echo tasks, one after another,
           through a journaled coordinator (--retain-finished=5s) and 2
           async workers: after each job the coordinator's RSS, journal
           size (journal.db + wal) and open descriptors, one row per job;
           the ratios last job / job 10; then kill -9 and a restart on the
           same data dir, timed from exec to listening. --methods does not
           apply
  custom   1,000 tasks of --spec=KIND:ARG, a kind of your own (the bench of
           a worker binary built with the SDK runs its kinds, locally and
           on farms of that binary)
Methods (--methods, comma-separated; default: every local and farm one):
  local:serial local:thread local:async local:auto   pools in this process
  farm:serial farm:thread farm:async farm:auto       a coordinator and N
      worker processes (farm:serialx10: 10 workers; default --workers)
  py:sequential py:process py:thread py:asyncio py:uvloop   the seed's own
      methods in Python (--python adds them all)
Slots (--slots) are per executor: the local pool or each farm worker.)";

// A progress line on stderr: "[2/8] local:thread  4,096/10,000 tasks".
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {
    if (enabled_) thread_ = std::thread([this] { Loop(); });
  }

  ~ProgressLine() {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  std::atomic<int64_t>* counter() { return &count_; }

  void Begin(std::string label, int64_t total) {
    count_ = 0;
    absl::MutexLock lock(&mu_);
    label_ = std::move(label);
    total_ = total;
    start_ = absl::Now();
    active_ = true;
  }

  void End() {
    absl::MutexLock lock(&mu_);
    active_ = false;
    Clear();
  }

 private:
  void Loop() {
    absl::MutexLock lock(&mu_);
    while (!done_) {
      mu_.AwaitWithTimeout(absl::Condition(&done_), absl::Milliseconds(100));
      if (done_ || !active_) continue;
      std::string line =
          absl::StrFormat("\r%s  %d/%d tasks  %.1f s", label_, count_.load(),
                          total_, absl::ToDoubleSeconds(absl::Now() - start_));
      width_ = std::max(width_, line.size());
      line.resize(width_, ' ');
      std::cerr << line << std::flush;
    }
    Clear();
  }

  void Clear() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (width_ == 0) return;
    std::cerr << "\r" << std::string(width_, ' ') << "\r" << std::flush;
    width_ = 0;
  }

  const bool enabled_;
  std::atomic<int64_t> count_{0};
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool active_ ABSL_GUARDED_BY(mu_) = false;
  std::string label_ ABSL_GUARDED_BY(mu_);
  int64_t total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time start_ ABSL_GUARDED_BY(mu_);
  size_t width_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

bool Executable(const std::string& path) {
  return !path.empty() && access(path.c_str(), X_OK) == 0;
}

// Debian's interpreter first (where python3-uvloop installs), then PATH.
std::string FindPython() {
  if (Executable("/usr/bin/python3")) return "/usr/bin/python3";
  const char* path = getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path != nullptr ? path : "", ':')) {
    const std::string candidate = absl::StrCat(dir, "/python3");
    if (!dir.empty() && Executable(candidate)) return candidate;
  }
  return "python3";
}

std::string FindScript() {
  const std::string beside = SelfDirectory() + "/seed_methods.py";
  if (access(beside.c_str(), R_OK) == 0) return beside;
  return QFARM_BENCH_SCRIPT;
}

// The run with the median wall time, noting the spread.
Row Median(std::vector<Row> runs) {
  std::vector<Row> ran;
  for (Row& row : runs) {
    if (!row.skipped) ran.push_back(std::move(row));
  }
  if (ran.empty()) return runs.front();
  std::sort(ran.begin(), ran.end(),
            [](const Row& a, const Row& b) { return a.wall_s < b.wall_s; });
  Row median = ran[(ran.size() - 1) / 2];
  if (ran.size() > 1) {
    absl::StrAppend(
        &median.note, median.note.empty() ? "" : "; ",
        absl::StrFormat("median of %d runs (wall %.3f..%.3f s)", ran.size(),
                        ran.front().wall_s, ran.back().wall_s));
  }
  return median;
}

const CommandLine& Flags() {
  static const auto* const flags = new CommandLine(
      kUsage, {Flag(FLAGS_workload),
               Flag(FLAGS_spec),
               Flag(FLAGS_methods),
               Flag(FLAGS_tasks, 0, 10'000'000),
               Flag(FLAGS_jobs, 0, 1'000'000),
               Flag(FLAGS_retain_finished),
               Flag(FLAGS_sleep),
               Flag(FLAGS_cpu_units, 0, 1'000'000'000),
               Flag(FLAGS_payload),
               Flag(FLAGS_quick),
               Flag(FLAGS_workers, 0, 1000),
               Flag(FLAGS_slots, 0, 1'000'000,
                    "tasks at once per executor: the local "
                    "pool or each farm worker (0: the "
                    "workload's default; serial is always "
                    "1)"),
               Flag(FLAGS_runs, 1, 100),
               Flag(FLAGS_max_ideal),
               Flag(FLAGS_journal),
               Flag(FLAGS_python),
               Flag(FLAGS_python_bin),
               Flag(FLAGS_python_script),
               Flag(FLAGS_output, "text, json or csv"),
               Flag(FLAGS_chart),
               Flag(FLAGS_chart_metric),
               Flag(FLAGS_coordinator,
                    "HOST:PORT: run farm methods on this farm "
                    "instead of starting one (one row; only "
                    "this process is measured)"),
               Flag(FLAGS_tls_ca, "with --coordinator: PEM CA bundle"),
               Flag(FLAGS_tls_cert,
                    "with --coordinator: PEM client "
                    "certificate"),
               Flag(FLAGS_tls_key, "with --coordinator: PEM private key"),
               Flag(FLAGS_token_file,
                    "with --coordinator: file holding the "
                    "client token")});
  return *flags;
}

// What the parsed flags ask for, checked.
struct Plan {
  Workload workload;
  std::vector<Method> methods;
  ChartMetric metric = ChartMetric::kWall;
};

// INVALID_ARGUMENT for a bad workload, method list or chart metric.
absl::StatusOr<Plan> PlanFromFlags() {
  Plan plan;
  ASSIGN_OR_RETURN(
      plan.workload,
      MakeWorkload({.name = absl::GetFlag(FLAGS_workload),
                    .tasks = absl::GetFlag(FLAGS_tasks),
                    .sleep = absl::GetFlag(FLAGS_sleep),
                    .cpu_units = absl::GetFlag(FLAGS_cpu_units),
                    .payload = absl::GetFlag(FLAGS_payload),
                    .quick = absl::GetFlag(FLAGS_quick),
                    .spec = absl::GetFlag(FLAGS_spec),
                    .jobs = absl::GetFlag(FLAGS_jobs),
                    .retain_finished = absl::GetFlag(FLAGS_retain_finished)}));
  const WorkloadKind kind = plan.workload.kind;
  plan.metric = kind == WorkloadKind::kEcho      ? ChartMetric::kTasksPerSecond
                : kind == WorkloadKind::kLatency ? ChartMetric::kLatencyP50
                                                 : ChartMetric::kWall;
  if (const std::string metric = absl::GetFlag(FLAGS_chart_metric);
      !metric.empty()) {
    ASSIGN_OR_RETURN(plan.metric, ParseChartMetric(metric));
  }
  if (const std::string methods = absl::GetFlag(FLAGS_methods);
      !methods.empty()) {
    ASSIGN_OR_RETURN(plan.methods, ParseMethods(methods));
  } else {
    plan.methods = DefaultMethods();
  }
  if (absl::GetFlag(FLAGS_python)) {
    for (const Method& m : PythonMethods()) {
      const bool listed = std::any_of(
          plan.methods.begin(), plan.methods.end(), [&m](const Method& x) {
            return x.placement == m.placement && x.mode == m.mode;
          });
      if (!listed) plan.methods.push_back(m);
    }
  }
  return plan;
}

// The context the flags ask for, but for the workload's tasks, the log
// directory, the HTTP server and the progress counter. INVALID_ARGUMENT
// for TLS or token files that cannot be read.
absl::Status FillContextFromFlags(const Workload& workload,
                                  const BenchOptions& options,
                                  RunContext& context) {
  context.workload = &workload;
  context.kinds = options.kinds;
  context.worker_binary = options.worker_binary;
  context.cores = std::max(1u, std::thread::hardware_concurrency());
  context.slots = absl::GetFlag(FLAGS_slots);
  context.workers = static_cast<int>(absl::GetFlag(FLAGS_workers));
  const char* bin_dir = std::getenv("QFARM_BIN_DIR");
  context.bin_dir =
      bin_dir != nullptr && *bin_dir != '\0' ? bin_dir : SelfDirectory();
  context.journal = absl::GetFlag(FLAGS_journal);
  const std::string python = absl::GetFlag(FLAGS_python_bin);
  context.python = python.empty() ? FindPython() : python;
  const std::string script = absl::GetFlag(FLAGS_python_script);
  context.script = script.empty() ? FindScript() : script;
  const std::string coordinator = absl::GetFlag(FLAGS_coordinator);
  const Kinds& kinds =
      options.kinds != nullptr ? *options.kinds : executors::BuiltInKinds();
  if (workload.kind == WorkloadKind::kCustom && coordinator.empty() &&
      kinds.Find(workload.custom.kind()) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--spec: kind \"", workload.custom.kind(),
        "\" is not one this bench runs (", absl::StrJoin(kinds.names(), ", "),
        "); run the bench of a binary that registers it (PROGRAM bench ...), "
        "or give --coordinator of a farm whose workers offer it"));
  }
  if (coordinator.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(
      std::shared_ptr<grpc::ChannelCredentials> credentials,
      MakeChannelCredentials({.cert = absl::GetFlag(FLAGS_tls_cert),
                              .key = absl::GetFlag(FLAGS_tls_key),
                              .ca = absl::GetFlag(FLAGS_tls_ca)}));
  context.external = {.address = coordinator, .credentials = credentials};
  if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
    ASSIGN_OR_RETURN(context.external.token, ReadTokenFile(file));
  }
  context.use_external = true;
  return absl::OkStatus();
}

// Runs each method --runs times into one row (the median); with
// --coordinator, the farm methods collapse into one row.
void RunMethods(const Plan& plan, const RunContext& context,
                ProgressLine& progress, Report& report) {
  const Workload& workload = plan.workload;
  if (workload.kind == WorkloadKind::kQueue) {
    progress.Begin("[1/1] coordinator queue", workload.tasks);
    report.rows.push_back(RunQueueMemory(context));
    progress.End();
    return;
  }
  bool external_done = false;
  for (size_t i = 0; i < plan.methods.size(); ++i) {
    const Method& method = plan.methods[i];
    if (method.placement == Placement::kFarm && context.use_external) {
      if (external_done) continue;
      external_done = true;
    }
    const Sizing sizing = SizeMethod(method, context);
    const double ideal =
        IdealSeconds(workload, sizing.total_slots, context.cores);
    if (ideal > absl::ToDoubleSeconds(absl::GetFlag(FLAGS_max_ideal))) {
      report.rows.push_back(
          {.method = sizing.label,
           .slots = sizing.total_slots,
           .tasks = workload.tasks,
           .ideal_s = ideal,
           .note = absl::StrFormat(
               "skipped: the ideal %.0f s is over --max-ideal", ideal),
           .skipped = true});
      continue;
    }
    std::vector<Row> attempts;
    for (int64_t r = 0; r < absl::GetFlag(FLAGS_runs); ++r) {
      progress.Begin(absl::StrFormat("[%d/%d] %s", i + 1, plan.methods.size(),
                                     sizing.label),
                     workload.tasks);
      switch (method.placement) {
        case Placement::kLocal:
          attempts.push_back(RunLocalMethod(method, context));
          break;
        case Placement::kFarm:
          attempts.push_back(RunFarmMethod(method, context));
          break;
        case Placement::kPython:
          attempts.push_back(RunPythonMethod(method, context));
          break;
      }
      progress.End();
    }
    report.rows.push_back(Median(std::move(attempts)));
  }
}

// Writes the chart to --chart unless empty; false when it cannot.
bool WriteChart(const std::string& svg, std::ostream& err) {
  const std::string chart = absl::GetFlag(FLAGS_chart);
  if (chart.empty()) return true;
  std::ofstream file(chart);
  file << svg;
  if (file.good()) return true;
  err << "qfarm bench: cannot write " << chart << "\n";
  return false;
}

void RemoveLogs(const std::string& log_dir) {
  std::error_code ignored;
  std::filesystem::remove_all(log_dir, ignored);
}

// --workload=soak: runs it, prints its report (and writes its chart);
// returns the exit code and removes the logs and the data directory
// unless the run failed.
int RunAndFinishSoak(const RunContext& context, ProgressLine& progress,
                     std::ostream& out, std::ostream& err) {
  const Workload& workload = *context.workload;
  const SoakReport report = RunSoak(context, [&](int64_t job) {
    progress.End();
    progress.Begin(absl::StrFormat("soak job %d/%d", job, workload.jobs),
                   workload.tasks);
  });
  progress.End();
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output == "json") {
    out << FormatSoakJson(report);
  } else if (output == "csv") {
    out << FormatSoakCsv(report);
    // Rows only on stdout; the restart's figure on stderr.
    if (report.restart_s >= 0) {
      err << absl::StrFormat(
          "qfarm bench: restart after kill -9: %.3f s to listening\n",
          report.restart_s);
    }
  } else {
    out << FormatSoakTable(report);
  }
  out.flush();
  int code = report.ok() ? kExitOk : kExitFailed;
  if (!WriteChart(FormatSoakSvg(report), err)) code = kExitFailed;
  if (!report.ok()) {
    if (!report.error.empty()) err << "qfarm bench: " << report.error << "\n";
    err << "qfarm bench: logs kept in " << context.log_dir << "\n";
  } else {
    RemoveLogs(context.log_dir);
  }
  return code;
}

// Prints the report (and writes the chart); returns the exit code and
// removes the children's logs unless a method failed to run.
int Finish(const Report& report, ChartMetric metric, const std::string& log_dir,
           std::ostream& out, std::ostream& err) {
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output == "json") {
    out << FormatJson(report);
  } else if (output == "csv") {
    out << FormatCsv(report);
  } else {
    out << FormatTable(report);
  }
  out.flush();
  int code = kExitOk;
  bool keep_logs = false;
  for (const Row& row : report.rows) {
    if (row.skipped && row.note.find("--max-ideal") == std::string::npos &&
        row.method.rfind("py:", 0) != 0) {
      code = kExitFailed;
      keep_logs = true;
    }
    if (!row.skipped && row.ok < row.tasks) code = kExitFailed;
  }
  if (!WriteChart(FormatSvg(report, metric), err)) code = kExitFailed;
  if (keep_logs) {
    err << "qfarm bench: logs kept in " << log_dir << "\n";
  } else {
    RemoveLogs(log_dir);
  }
  return code;
}

}  // namespace

int RunBenchCommand(const std::vector<std::string>& raw_args, std::ostream& out,
                    std::ostream& err, const BenchOptions& options) {
  const auto usage = [&err](absl::string_view message) {
    err << "qfarm bench: " << message << "\n";
    return kExitUsage;
  };
  absl::StatusOr<ParsedArgs> args = Flags().Parse(raw_args);
  if (!args.ok()) return usage(args.status().message());
  if (args->help) {
    out << Flags().Help();
    return kExitOk;
  }
  if (!args->positional.empty()) {
    return usage(absl::StrCat("unexpected argument \"",
                              Abbreviate(args->positional[0]),
                              "\" (see qfarm bench --help)"));
  }
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "text" && output != "json" && output != "csv") {
    return usage(absl::StrCat("--output=", Abbreviate(output),
                              ": expected text, json or csv"));
  }
  absl::StatusOr<Plan> plan = PlanFromFlags();
  if (!plan.ok()) return usage(plan.status().message());
  Workload& workload = plan->workload;
  RunContext context;
  if (absl::Status filled = FillContextFromFlags(workload, options, context);
      !filled.ok()) {
    return usage(filled.message());
  }
  if (workload.kind == WorkloadKind::kSoak && context.use_external) {
    return usage(
        "--workload=soak starts its own farm: --coordinator does "
        "not apply");
  }
  char dir_template[] = "/tmp/qfarm-bench.XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    err << "qfarm bench: cannot make a temporary directory\n";
    return kExitFailed;
  }
  context.log_dir = dir_template;
  if (workload.kind == WorkloadKind::kCpu ||
      workload.kind == WorkloadKind::kMixed) {
    workload.cpu_task_s = MeasureCpuTaskSeconds(workload.cpu_units);
  }
  std::unique_ptr<testing::HttpTestServer> http_server;
  if (workload.kind == WorkloadKind::kHttp) {
    absl::StatusOr<std::unique_ptr<testing::HttpTestServer>> started =
        testing::HttpTestServer::Start();
    if (!started.ok()) {
      err << "qfarm bench: the local HTTP server did not start: "
          << started.status().message() << "\n";
      return kExitFailed;
    }
    http_server = *std::move(started);
    context.http_base = http_server->Url("");
  }
  const std::vector<v1::Task> task_list =
      BuildTasks(workload, context.http_base);
  context.tasks = &task_list;
  ProgressLine progress(&err == &std::cerr && isatty(STDERR_FILENO) == 1);
  context.progress = progress.counter();
  if (workload.kind == WorkloadKind::kSoak) {
    return RunAndFinishSoak(context, progress, out, err);
  }
  Report report{.workload = workload.name,
                .title = workload.Title(),
                .ideal = workload.IdealFormula(),
                .cores = context.cores};
  RunMethods(*plan, context, progress, report);
  if (http_server != nullptr) http_server->Stop();
  return Finish(report, plan->metric, context.log_dir, out, err);
}

}  // namespace qfarm::bench
