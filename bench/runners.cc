#include "bench/runners.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/child_process.h"
#include "bench/farm_processes.h"
#include "bench/usage.h"
#include "client/local_pool.h"
#include "common/clock.h"
#include "executors/executor.h"
#include "executors/task_kinds.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace qfarm::bench {
namespace {

int64_t NowMicros() { return absl::GetCurrentTimeNanos() / 1000; }

// Hands one result at a time to the thread waiting for it.
class OneResultSink : public executors::ResultSink {
 public:
  void OnResult(v1::TaskResult result) override {
    absl::MutexLock lock(&mu_);
    result_ = std::move(result);
  }

  v1::TaskResult Take() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::optional<v1::TaskResult>* r) { return r->has_value(); },
        &result_));
    v1::TaskResult out = *std::move(result_);
    result_.reset();
    return out;
  }

 private:
  absl::Mutex mu_;
  std::optional<v1::TaskResult> result_ ABSL_GUARDED_BY(mu_);
};

void Count(const RunContext& context, int64_t n) {
  if (context.progress != nullptr) {
    context.progress->fetch_add(n, std::memory_order_relaxed);
  }
}

// The rest of a row once the run is over.
void Finish(const TaskLog& log, Row* row) {
  log.Fill(row);
  if (log.received() < row->tasks) {
    absl::StrAppend(&row->note, row->note.empty() ? "" : "; ", "got ",
                    log.received(), " of ", row->tasks, " results");
  } else if (row->ok < row->tasks) {
    absl::StrAppend(&row->note, row->note.empty() ? "" : "; ",
                    row->tasks - row->ok, " tasks did not succeed");
  }
}

std::string PythonKind(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kSeed:
    case WorkloadKind::kScale:
      return "sleep";
    case WorkloadKind::kEcho:
    case WorkloadKind::kLatency:
    case WorkloadKind::kQueue:
    case WorkloadKind::kSoak:
      return "echo";
    case WorkloadKind::kCpu:
      return "cpu";
    case WorkloadKind::kHttp:
      return "http";
    case WorkloadKind::kMixed:
      return "mixed";
    case WorkloadKind::kCustom:
      break;
  }
  return "sleep";
}

// Room for the whole job; a journal in a fresh directory, or none.
std::vector<std::string> CoordinatorFlags(const RunContext& context,
                                          int64_t tasks) {
  static std::atomic<int> runs{0};
  std::vector<std::string> flags = {
      absl::StrCat("--max-queued=", std::max<int64_t>(1'000'000, tasks)),
      absl::StrCat("--max-tasks-per-job=",
                   std::max<int64_t>(1'000'000, tasks))};
  if (context.journal) {
    flags.push_back(absl::StrCat("--data-dir=", context.log_dir, "/journal-",
                                 runs.fetch_add(1)));
  } else {
    flags.push_back("--ephemeral");
  }
  return flags;
}

// The member `key` of a JSON object; null (0, "", empty) when absent.
const google::protobuf::Value& Member(const google::protobuf::Struct& object,
                                      const std::string& key) {
  auto it = object.fields().find(key);
  return it != object.fields().end()
             ? it->second
             : google::protobuf::Value::default_instance();
}

int64_t Integer(const google::protobuf::Struct& object,
                const std::string& key) {
  return static_cast<int64_t>(Member(object, key).number_value());
}

Usage UsageFromJson(const google::protobuf::Struct& u) {
  return {.user_s = Member(u, "user_s").number_value(),
          .sys_s = Member(u, "sys_s").number_value(),
          .voluntary_cs = Integer(u, "voluntary_cs"),
          .involuntary_cs = Integer(u, "involuntary_cs"),
          .peak_rss_bytes = Integer(u, "peak_rss_bytes")};
}

}  // namespace

TaskLog::TaskLog(size_t tasks, int64_t submitted_us)
    : submitted_us_(submitted_us),
      intervals_(tasks),
      latencies_(tasks, -1),
      seen_(tasks, false) {}

void TaskLog::Add(const v1::TaskResult& result, int64_t received_us,
                  int64_t submitted_us) {
  const size_t index = result.index();
  if (index >= seen_.size() || seen_[index]) return;
  seen_[index] = true;
  ++received_;
  if (result.state() == v1::TASK_STATE_OK) ++ok_;
  intervals_[index] = {result.started_us(), result.finished_us()};
  const int64_t submitted = submitted_us != 0 ? submitted_us : submitted_us_;
  latencies_[index] = received_us - submitted;
  if (record_hops_ && result.queued_us() > 0 && result.dispatched_us() > 0 &&
      result.started_us() > 0) {
    hops_[0].push_back(result.queued_us() - submitted);
    hops_[1].push_back(result.dispatched_us() - result.queued_us());
    hops_[2].push_back(result.started_us() - result.dispatched_us());
    hops_[3].push_back(result.finished_us() - result.started_us());
    hops_[4].push_back(received_us - result.finished_us());
  }
}

void TaskLog::AddTimes(size_t index, const Interval& ran, int64_t latency_us,
                       bool ok) {
  if (index >= seen_.size() || seen_[index]) return;
  seen_[index] = true;
  ++received_;
  if (ok) ++ok_;
  intervals_[index] = ran;
  latencies_[index] = latency_us;
}

void TaskLog::Fill(Row* row) const {
  std::vector<int64_t> latencies;
  latencies.reserve(static_cast<size_t>(received_));
  for (int64_t latency : latencies_) {
    if (latency >= 0) latencies.push_back(latency);
  }
  const LatencySummary summary = SummarizeLatencies(std::move(latencies));
  row->ok = ok_;
  row->latency_p50_us = summary.p50;
  row->latency_p99_us = summary.p99;
  row->max_concurrency = MaxConcurrency(intervals_);
  if (!hops_[0].empty()) {
    int64_t p50[5];
    for (int i = 0; i < 5; ++i) p50[i] = SummarizeLatencies(hops_[i]).p50;
    absl::StrAppend(
        &row->note, row->note.empty() ? "" : "; ",
        absl::StrFormat("median hops: client->coordinator %dus, queue %dus, "
                        "->worker start %dus, run %dus, ->client %dus",
                        p50[0], p50[1], p50[2], p50[3], p50[4]));
  }
}

double MeasureCpuTaskSeconds(int64_t units) {
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    struct timespec a = {}, b = {};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    (void)executors::CpuDigestHex(units);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    const double s = static_cast<double>(b.tv_sec - a.tv_sec) +
                     static_cast<double>(b.tv_nsec - a.tv_nsec) / 1e9;
    if (i == 0 || s < best) best = s;
  }
  return best;
}

Sizing SizeMethod(const Method& method, const RunContext& context) {
  const Workload& w = *context.workload;
  Sizing s;
  const bool serial = method.mode == "serial" || method.mode == "sequential";
  switch (method.placement) {
    case Placement::kLocal:
      s.slots = serial ? 1
                : context.slots > 0
                    ? context.slots
                    : DefaultSlots(w, method.mode, context.cores);
      s.total_slots = s.slots;
      s.label = method.Label();
      break;
    case Placement::kFarm: {
      s.workers = method.workers > 0 ? method.workers
                  : context.workers > 0
                      ? context.workers
                      : DefaultWorkers(w, method.mode, context.cores);
      s.slots = serial ? 1
                : context.slots > 0
                    ? context.slots
                    : DefaultSlots(w, method.mode, context.cores);
      s.total_slots = s.workers * s.slots;
      Method sized = method;
      sized.workers = s.workers;
      s.label = sized.Label();
      break;
    }
    case Placement::kPython:
      if (serial) {
        s.slots = 1;
      } else if (method.mode == "process" || method.mode == "thread") {
        if (context.slots > 0) {
          s.slots = context.slots;
        } else if (w.kind == WorkloadKind::kSeed) {
          // The seed ran the pools with their own defaults.
          s.slots = method.mode == "process" ? context.cores
                                             : std::min(32, context.cores + 4);
        } else if (w.kind == WorkloadKind::kLatency) {
          s.slots = 1;
        } else {
          s.slots = method.mode == "process"
                        ? DefaultWorkers(w, "serial", context.cores)
                        : DefaultSlots(w, "thread", context.cores);
        }
      } else {
        s.slots = w.kind == WorkloadKind::kLatency ? 1 : w.tasks;
      }
      s.total_slots = s.slots;
      s.label = method.Label();
      break;
  }
  return s;
}

Row RunLocalMethod(const Method& method, const RunContext& context) {
  const Workload& w = *context.workload;
  const std::vector<v1::Task>& tasks = *context.tasks;
  const Sizing sizing = SizeMethod(method, context);
  Row row;
  row.method = sizing.label;
  row.slots = sizing.total_slots;
  row.tasks = static_cast<int64_t>(tasks.size());
  row.ideal_s = IdealSeconds(w, sizing.total_slots, context.cores);
  absl::StatusOr<executors::Mode> mode = executors::ParseMode(method.mode);
  if (!mode.ok()) {
    row.skipped = true;
    row.note = std::string(mode.status().message());
    return row;
  }
  // Allocated (and touched) before the baseline is read.
  TaskLog log(tasks.size(), 0);
  // The pool moves the tasks into its messages: it gets a copy, made (and
  // freed) outside the timed part, as every method gets its tasks built
  // beforehand.
  std::vector<v1::Task> pool_tasks;
  if (w.kind != WorkloadKind::kLatency) pool_tasks = tasks;
  ResetPeakRss();
  const Usage before = ReadSelfUsage();
  const int64_t start_us = NowMicros();
  log.set_submitted_us(start_us);
  if (w.kind == WorkloadKind::kLatency) {
    OneResultSink sink;
    std::unique_ptr<executors::Executor> executor =
        executors::MakeExecutor({.mode = *mode,
                                 .slots = static_cast<int>(sizing.slots),
                                 .worker_name = "local",
                                 .sink = &sink,
                                 .kinds = context.kinds});
    for (size_t i = 0; i < tasks.size(); ++i) {
      v1::Assignment assignment;
      assignment.set_index(static_cast<uint32_t>(i));
      assignment.set_attempt(1);
      *assignment.mutable_task() = tasks[i];
      const int64_t submitted = NowMicros();
      executor->Submit(std::move(assignment));
      v1::TaskResult result = sink.Take();
      log.Add(result, NowMicros(), submitted);
      Count(context, 1);
    }
    executor->Shutdown();
  } else {
    absl::Status status = client::RunLocalBatches(
        std::move(pool_tasks),
        {.mode = *mode,
         .slots = static_cast<int>(sizing.slots),
         .kinds = context.kinds},
        [&log, &context](std::vector<v1::TaskResult>& batch) {
          const int64_t now = NowMicros();
          for (const v1::TaskResult& result : batch) log.Add(result, now);
          Count(context, static_cast<int64_t>(batch.size()));
        });
    if (!status.ok()) row.note = std::string(status.message());
  }
  row.wall_s = static_cast<double>(NowMicros() - start_us) / 1e6;
  row.usage = Delta(before, ReadSelfUsage());
  row.baseline_rss_bytes = before.rss_bytes;
  row.processes.push_back(
      {.name = "qfarm", .pid = getpid(), .usage = row.usage});
  Finish(log, &row);
  return row;
}

Row RunFarmMethod(const Method& method, const RunContext& context) {
  const Workload& w = *context.workload;
  const std::vector<v1::Task>& tasks = *context.tasks;
  const Sizing sizing = SizeMethod(method, context);
  Row row;
  row.method = context.use_external
                   ? absl::StrCat("farm@", context.external.address)
                   : sizing.label;
  row.slots = context.use_external ? 0 : sizing.total_slots;
  row.tasks = static_cast<int64_t>(tasks.size());
  row.ideal_s = context.use_external
                    ? 0
                    : IdealSeconds(w, sizing.total_slots, context.cores);

  std::unique_ptr<FarmProcesses> farm;
  client::ClientOptions options = context.external;
  if (!context.use_external) {
    absl::StatusOr<std::unique_ptr<FarmProcesses>> started =
        FarmProcesses::Start(
            {.bin_dir = context.bin_dir,
             .worker_binary = context.worker_binary,
             .log_dir = context.log_dir,
             .mode = method.mode,
             .workers = sizing.workers,
             .slots = sizing.slots,
             .coordinator_flags = CoordinatorFlags(context, row.tasks)});
    if (!started.ok()) {
      row.skipped = true;
      row.note = std::string(started.status().message());
      return row;
    }
    farm = *std::move(started);
    options = client::ClientOptions{.address = farm->address()};
  } else {
    row.note = "only this client is measured (--coordinator)";
  }
  std::unique_ptr<client::FarmClient> client =
      client::FarmClient::Create(options);

  TaskLog log(tasks.size(), 0);
  if (w.kind == WorkloadKind::kLatency) log.RecordHops();
  const std::vector<ProcessUsage> before =
      farm != nullptr ? farm->Snapshot() : std::vector<ProcessUsage>{};
  ResetPeakRss();
  const Usage self_before = ReadSelfUsage();
  const int64_t start_us = NowMicros();
  log.set_submitted_us(start_us);
  absl::Status status;
  if (w.kind == WorkloadKind::kLatency) {
    // One task per job, one job at a time, on one long-lived Session call.
    std::unique_ptr<client::FarmSession> session = client->OpenSession();
    for (size_t i = 0; i < tasks.size() && status.ok(); ++i) {
      const int64_t submitted = NowMicros();
      status =
          session->RunAsCompleted({tasks[i]}, [&](v1::TaskResult&& result) {
            result.set_index(static_cast<uint32_t>(i));
            log.Add(result, NowMicros(), submitted);
            Count(context, 1);
          });
    }
    if (status.ok()) status = session->Close();
  } else {
    absl::StatusOr<uint64_t> job = client->SubmitJob(tasks);
    if (job.ok()) {
      status = client->WatchJob(*job, [&](v1::TaskResult&& result) {
        log.Add(result, NowMicros());
        Count(context, 1);
      });
    } else {
      status = job.status();
    }
  }
  row.wall_s = static_cast<double>(NowMicros() - start_us) / 1e6;
  const Usage self = Delta(self_before, ReadSelfUsage());
  row.processes.push_back({.name = "client", .pid = getpid(), .usage = self});
  row.usage = self;
  row.baseline_rss_bytes = self_before.rss_bytes;
  if (farm != nullptr) {
    const std::vector<ProcessUsage> after = farm->Snapshot();
    for (size_t i = 0; i < after.size() && i < before.size(); ++i) {
      ProcessUsage used = after[i];
      used.usage = Delta(before[i].usage, after[i].usage);
      Accumulate(row.usage, used.usage);
      row.baseline_rss_bytes += before[i].usage.rss_bytes;
      row.processes.push_back(std::move(used));
    }
    farm->Stop();
  }
  if (!status.ok()) {
    row.note = absl::StrCat(status.message(), " (",
                            absl::StatusCodeToString(status.code()), ")");
  }
  Finish(log, &row);
  return row;
}

Row RunPythonMethod(const Method& method, const RunContext& context) {
  const Workload& w = *context.workload;
  const Sizing sizing = SizeMethod(method, context);
  Row row;
  row.method = sizing.label;
  row.slots = sizing.total_slots;
  row.tasks = w.tasks;
  row.ideal_s = IdealSeconds(w, sizing.total_slots, context.cores);
  if (w.kind == WorkloadKind::kCustom) {
    row.skipped = true;
    row.note = "skipped: the Python methods run the built-in kinds only";
    return row;
  }

  std::vector<std::string> argv = {context.python,
                                   context.script,
                                   absl::StrCat("--method=", method.mode),
                                   absl::StrCat("--kind=", PythonKind(w.kind)),
                                   absl::StrCat("--tasks=", w.tasks),
                                   absl::StrCat("--cpu-units=", w.cpu_units)};
  switch (w.kind) {
    case WorkloadKind::kCpu:
      argv.push_back(absl::StrCat("--arg=", w.cpu_units));
      break;
    case WorkloadKind::kEcho:
    case WorkloadKind::kLatency:
      argv.push_back(absl::StrCat("--text=", w.payload));
      break;
    case WorkloadKind::kHttp:
      argv.push_back(absl::StrCat("--text=", context.http_base, "/delay/",
                                  absl::ToInt64Milliseconds(w.sleep)));
      break;
    default:
      argv.push_back(
          absl::StrCat("--arg=", absl::ToInt64Milliseconds(w.sleep)));
  }
  if (w.kind == WorkloadKind::kLatency) argv.push_back("--one-at-a-time");
  if (w.kind == WorkloadKind::kEcho) argv.push_back("--chunksize=1000");
  // The seed's pools ran with their own defaults.
  if ((method.mode == "process" || method.mode == "thread") &&
      (w.kind != WorkloadKind::kSeed || context.slots > 0)) {
    argv.push_back(absl::StrCat("--workers=", sizing.slots));
  }

  const std::string log_path =
      absl::StrCat(context.log_dir, "/python-", method.mode, ".log");
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start(argv, {.stderr_path = log_path, .pipe_stdout = true});
  if (!child.ok()) {
    row.skipped = true;
    row.note = std::string(child.status().message());
    return row;
  }
  absl::StatusOr<std::string> out = (*child)->ReadAll(absl::Hours(2));
  absl::StatusOr<int> code = (*child)->WaitFor(absl::Seconds(60));
  if (!code.ok()) (*child)->Stop(absl::Seconds(1));
  google::protobuf::Struct doc;
  if (!out.ok() ||
      !google::protobuf::util::JsonStringToMessage(*out, &doc).ok()) {
    row.skipped = true;
    row.note =
        absl::StrCat(context.python, " ", context.script, " failed (exit ",
                     code.ok() ? *code : -1, "); see ", log_path);
    return row;
  }
  const std::string error = Member(doc, "error").string_value();
  const google::protobuf::ListValue& times =
      Member(doc, "times_us").list_value();
  if (!error.empty() && times.values().empty()) {
    row.skipped = true;
    row.note = error;
    return row;
  }
  row.note = error;
  row.slots = Integer(doc, "slots");
  row.ideal_s = IdealSeconds(w, row.slots, context.cores);
  row.wall_s = Member(doc, "wall_s").number_value();
  const google::protobuf::Struct& usage = Member(doc, "usage").struct_value();
  row.usage = UsageFromJson(usage);
  row.baseline_rss_bytes = Integer(usage, "baseline_rss_bytes");
  row.processes.push_back(
      {.name = "python", .pid = (*child)->pid(), .usage = row.usage});
  TaskLog log(static_cast<size_t>(w.tasks), 0);
  for (int i = 0; i < times.values_size(); ++i) {
    const auto& t = times.values(i).list_value().values();
    if (t.size() < 4) continue;
    const auto us = [&t](int k) {
      return static_cast<int64_t>(t[k].number_value());
    };
    log.AddTimes(static_cast<size_t>(i), {us(0), us(1)}, us(2) - us(3), true);
  }
  Count(context, log.received());
  Finish(log, &row);
  // Per-task success is the script's count.
  row.ok = Integer(doc, "ok");
  if (row.ok < row.tasks && row.note.empty()) {
    row.note = absl::StrCat(row.tasks - row.ok, " tasks did not succeed");
  }
  return row;
}

Row RunQueueMemory(const RunContext& context) {
  const std::vector<v1::Task>& tasks = *context.tasks;
  Row row;
  row.method = "farm:coordinator";
  row.tasks = static_cast<int64_t>(tasks.size());
  absl::StatusOr<std::unique_ptr<FarmProcesses>> farm = FarmProcesses::Start(
      {.bin_dir = context.bin_dir,
       .log_dir = context.log_dir,
       .workers = 0,
       .coordinator_flags = CoordinatorFlags(context, row.tasks)});
  if (!farm.ok()) {
    row.skipped = true;
    row.note = std::string(farm.status().message());
    return row;
  }
  std::unique_ptr<client::FarmClient> client =
      client::FarmClient::Create({.address = (*farm)->address()});
  // A first call sets up the channel and the coordinator's call path.
  (void)client->ListWorkers();
  const pid_t pid = (*farm)->coordinator_pid();
  const absl::StatusOr<Usage> before = ReadProcessUsage(pid);
  const int64_t start_us = NowMicros();
  absl::StatusOr<uint64_t> job = client->SubmitJob(tasks);
  row.wall_s = static_cast<double>(NowMicros() - start_us) / 1e6;
  absl::StatusOr<v1::JobInfo> info =
      job.ok() ? client->GetJob(*job)
               : absl::StatusOr<v1::JobInfo>(job.status());
  const absl::StatusOr<Usage> after = ReadProcessUsage(pid);
  if (!info.ok() || !before.ok() || !after.ok()) {
    row.skipped = true;
    row.note = std::string(!info.ok() ? info.status().message()
                                      : "the coordinator could not be read");
    return row;
  }
  row.ok = info->queued();
  row.max_concurrency = info->queued();
  row.usage = Delta(*before, *after);
  // Held now, not the transient peak of decoding the request.
  row.usage.peak_rss_bytes = after->rss_bytes;
  row.baseline_rss_bytes = before->rss_bytes;
  row.processes.push_back(
      {.name = "coordinator", .pid = pid, .usage = row.usage});
  row.note = absl::StrCat(
      "coordinator VmRSS ", FormatBytes(static_cast<double>(before->rss_bytes)),
      " -> ", FormatBytes(static_cast<double>(after->rss_bytes)), " (peak ",
      FormatBytes(static_cast<double>(after->peak_rss_bytes)),
      "), no workers; RSS/TASK = its growth per queued task");
  (*farm)->Stop();
  return row;
}

}  // namespace qfarm::bench
