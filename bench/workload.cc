#include "bench/workload.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/abbreviate.h"
#include "common/task_spec.h"

namespace qfarm::bench {
namespace {

constexpr int64_t kMaxTasks = 10'000'000;
constexpr int64_t kDefaultSoakJobs = 200;
constexpr int64_t kMaxSoakJobs = 1'000'000;

struct Defaults {
  WorkloadKind kind;
  const char* name;
  int64_t tasks;
  absl::Duration sleep;
  int64_t cpu_units;
};

const Defaults kDefaults[] = {
    {WorkloadKind::kSeed, "seed", 10, absl::Seconds(1), 0},
    {WorkloadKind::kScale, "scale", 10'000, absl::Milliseconds(100), 0},
    {WorkloadKind::kEcho, "echo", 100'000, absl::ZeroDuration(), 0},
    {WorkloadKind::kCpu, "cpu", 40, absl::ZeroDuration(), 20'000},
    {WorkloadKind::kHttp, "http", 1'000, absl::Milliseconds(100), 0},
    {WorkloadKind::kMixed, "mixed", 200, absl::Milliseconds(100), 20'000},
    {WorkloadKind::kLatency, "latency", 2'000, absl::ZeroDuration(), 0},
    {WorkloadKind::kQueue, "queue", 1'000'000, absl::ZeroDuration(), 0},
    {WorkloadKind::kSoak, "soak", 100'000, absl::ZeroDuration(), 0},
    {WorkloadKind::kCustom, "custom", 1'000, absl::ZeroDuration(), 0},
};

int64_t CeilDiv(int64_t a, int64_t b) { return b <= 0 ? 0 : (a + b - 1) / b; }

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

}  // namespace

std::string Workload::Title() const {
  const std::string sleep_text = FormatMillis(absl::ToInt64Milliseconds(sleep));
  switch (kind) {
    case WorkloadKind::kSeed:
    case WorkloadKind::kScale:
      return absl::StrCat(name, ": ", tasks, " x sleep ", sleep_text);
    case WorkloadKind::kEcho:
      return absl::StrCat(name, ": ", tasks, " x echo");
    case WorkloadKind::kCpu:
      return absl::StrCat(name, ": ", tasks, " x cpu ", cpu_units);
    case WorkloadKind::kHttp:
      return absl::StrCat(name, ": ", tasks, " x http GET delayed ",
                          sleep_text);
    case WorkloadKind::kMixed:
      return absl::StrCat(name, ": ", io_tasks, " x sleep ", sleep_text, " + ",
                          cpu_tasks, " x cpu ", cpu_units);
    case WorkloadKind::kLatency:
      return absl::StrCat(name, ": ", tasks,
                          " x one echo task at a time (round trip)");
    case WorkloadKind::kQueue:
      return absl::StrCat(
          name, ": ", tasks,
          " echo tasks queued on a coordinator without workers");
    case WorkloadKind::kSoak:
      return absl::StrCat(name, ": ", jobs, " jobs x ", tasks,
                          " echo tasks, --retain-finished=",
                          absl::FormatDuration(retain_finished));
    case WorkloadKind::kCustom:
      return absl::StrCat(name, ": ", tasks, " x ", FormatTaskSpec(custom));
  }
  return name;
}

std::string Workload::IdealFormula() const {
  switch (kind) {
    case WorkloadKind::kSeed:
    case WorkloadKind::kScale:
      return "ceil(tasks / slots) x sleep";
    case WorkloadKind::kHttp:
      return "ceil(tasks / slots) x the server's delay";
    case WorkloadKind::kCpu:
      return absl::StrCat(
          "ceil(tasks / min(slots, cores)) x one task's CPU time (",
          absl::StrFormat("%.1f", cpu_task_s * 1e3), " ms measured)");
    case WorkloadKind::kMixed:
      return absl::StrCat(
          "max(ceil(sleeps / slots) x sleep, ceil(cpu tasks / min(slots, "
          "cores)) x one cpu task (",
          absl::StrFormat("%.1f", cpu_task_s * 1e3), " ms measured))");
    case WorkloadKind::kEcho:
    case WorkloadKind::kLatency:
    case WorkloadKind::kQueue:
    case WorkloadKind::kSoak:
      return "none: the workload measures overhead";
    case WorkloadKind::kCustom:
      return "none: the kind's work is unknown to the bench";
  }
  return "";
}

absl::StatusOr<Workload> MakeWorkload(const WorkloadOptions& options) {
  const Defaults* defaults = nullptr;
  for (const Defaults& d : kDefaults) {
    if (options.name == d.name) defaults = &d;
  }
  if (defaults == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--workload=", options.name,
        ": expected seed, scale, echo, cpu, http, mixed, latency, queue, soak "
        "or custom"));
  }
  if (!options.spec.empty() && defaults->kind != WorkloadKind::kCustom) {
    return absl::InvalidArgumentError("--spec is for --workload=custom only");
  }
  if (options.tasks < 0 || options.tasks > kMaxTasks) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tasks=", options.tasks, ": expected 1..", kMaxTasks));
  }
  if (options.sleep < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--sleep must not be negative");
  }
  if (options.jobs != 0 && defaults->kind != WorkloadKind::kSoak) {
    return absl::InvalidArgumentError("--jobs is for --workload=soak only");
  }
  if (options.jobs < 0 || options.jobs > kMaxSoakJobs) {
    return absl::InvalidArgumentError(
        absl::StrCat("--jobs=", options.jobs, ": expected 1..", kMaxSoakJobs));
  }
  if (options.retain_finished < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--retain-finished must not be negative");
  }
  Workload w;
  w.kind = defaults->kind;
  w.name = defaults->name;
  w.tasks = options.tasks > 0 ? options.tasks : defaults->tasks;
  w.sleep =
      options.sleep > absl::ZeroDuration() ? options.sleep : defaults->sleep;
  if (w.kind == WorkloadKind::kSeed && options.quick &&
      options.sleep == absl::ZeroDuration()) {
    w.sleep = absl::Milliseconds(50);
  }
  w.cpu_units = options.cpu_units > 0 ? options.cpu_units : defaults->cpu_units;
  w.payload = options.payload.empty() ? "x" : options.payload;
  if (w.kind == WorkloadKind::kSoak) {
    w.jobs = options.jobs > 0 ? options.jobs : kDefaultSoakJobs;
    w.retain_finished = options.retain_finished;
  }
  if (w.kind == WorkloadKind::kCustom) {
    if (options.spec.empty()) {
      return absl::InvalidArgumentError(
          "--workload=custom needs --spec=KIND:ARG, for example "
          "--spec=reverse:hello");
    }
    absl::StatusOr<v1::Task> task = ParseTaskSpec(options.spec);
    if (!task.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--spec: ", task.status().message()));
    }
    w.custom = *std::move(task);
  }
  if (w.kind == WorkloadKind::kMixed) {
    w.io_tasks = (w.tasks + 1) / 2;
    w.cpu_tasks = w.tasks / 2;
  } else if (w.kind == WorkloadKind::kCpu) {
    w.cpu_tasks = w.tasks;
  } else {
    w.io_tasks = w.tasks;
  }
  return w;
}

std::vector<v1::Task> BuildTasks(const Workload& workload,
                                 absl::string_view http_base) {
  v1::Task sleep;
  sleep.set_kind(std::string(kSleepKind));
  sleep.set_arg(absl::ToInt64Milliseconds(workload.sleep));
  v1::Task cpu;
  cpu.set_kind(std::string(kCpuKind));
  cpu.set_arg(workload.cpu_units);
  v1::Task echo;
  echo.set_kind(std::string(kEchoKind));
  echo.set_text(workload.payload);
  v1::Task http;
  http.set_kind(std::string(kHttpKind));
  http.set_text(absl::StrCat(http_base, "/delay/",
                             absl::ToInt64Milliseconds(workload.sleep)));

  std::vector<v1::Task> tasks;
  tasks.reserve(static_cast<size_t>(workload.tasks));
  for (int64_t i = 0; i < workload.tasks; ++i) {
    switch (workload.kind) {
      case WorkloadKind::kSeed:
      case WorkloadKind::kScale:
        tasks.push_back(sleep);
        break;
      case WorkloadKind::kEcho:
      case WorkloadKind::kLatency:
      case WorkloadKind::kQueue:
      case WorkloadKind::kSoak:
        tasks.push_back(echo);
        break;
      case WorkloadKind::kCpu:
        tasks.push_back(cpu);
        break;
      case WorkloadKind::kHttp:
        tasks.push_back(http);
        break;
      case WorkloadKind::kMixed:
        tasks.push_back(i % 2 == 0 ? sleep : cpu);
        break;
      case WorkloadKind::kCustom:
        tasks.push_back(workload.custom);
        break;
    }
  }
  return tasks;
}

double IdealSeconds(const Workload& w, int64_t slots, int cores) {
  if (slots <= 0) return 0;
  const int64_t cpu_parallel =
      std::max<int64_t>(1, std::min<int64_t>(slots, cores));
  switch (w.kind) {
    case WorkloadKind::kSeed:
    case WorkloadKind::kScale:
    case WorkloadKind::kHttp:
      return static_cast<double>(CeilDiv(w.tasks, slots)) * Seconds(w.sleep);
    case WorkloadKind::kCpu:
      return static_cast<double>(CeilDiv(w.tasks, cpu_parallel)) * w.cpu_task_s;
    case WorkloadKind::kMixed:
      return std::max(
          static_cast<double>(CeilDiv(w.io_tasks, slots)) * Seconds(w.sleep),
          static_cast<double>(CeilDiv(w.cpu_tasks, cpu_parallel)) *
              w.cpu_task_s);
    case WorkloadKind::kEcho:
    case WorkloadKind::kLatency:
    case WorkloadKind::kQueue:
    case WorkloadKind::kSoak:
    case WorkloadKind::kCustom:
      return 0;
  }
  return 0;
}

std::string Method::Label() const {
  switch (placement) {
    case Placement::kLocal:
      return absl::StrCat("local:", mode);
    case Placement::kFarm:
      return workers > 0 ? absl::StrCat("farm:", mode, " x", workers)
                         : absl::StrCat("farm:", mode);
    case Placement::kPython:
      return absl::StrCat("py:", mode);
  }
  return mode;
}

std::vector<Method> DefaultMethods() {
  std::vector<Method> methods;
  for (const char* mode : {"serial", "thread", "async", "auto"}) {
    methods.push_back({.placement = Placement::kLocal, .mode = mode});
  }
  for (const char* mode : {"serial", "thread", "async", "auto"}) {
    methods.push_back({.placement = Placement::kFarm, .mode = mode});
  }
  return methods;
}

std::vector<Method> PythonMethods() {
  std::vector<Method> methods;
  for (const char* mode :
       {"sequential", "process", "thread", "asyncio", "uvloop"}) {
    methods.push_back({.placement = Placement::kPython, .mode = mode});
  }
  return methods;
}

absl::StatusOr<std::vector<Method>> ParseMethods(absl::string_view list) {
  std::vector<Method> methods;
  for (absl::string_view raw : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    const absl::string_view entry = absl::StripAsciiWhitespace(raw);
    const auto bad = [&entry](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("--methods: \"", Abbreviate(entry), "\": ", why));
    };
    if (entry == "all") {
      for (Method& m : DefaultMethods()) methods.push_back(m);
      continue;
    }
    if (entry == "local" || entry == "farm") {
      for (Method& m : DefaultMethods()) {
        if ((m.placement == Placement::kLocal) == (entry == "local")) {
          methods.push_back(m);
        }
      }
      continue;
    }
    if (entry == "py" || entry == "python") {
      for (Method& m : PythonMethods()) methods.push_back(m);
      continue;
    }
    const size_t colon = entry.find(':');
    if (colon == absl::string_view::npos) {
      return bad("expected local:MODE, farm:MODE[xN] or py:NAME");
    }
    const absl::string_view where = entry.substr(0, colon);
    absl::string_view mode = entry.substr(colon + 1);
    Method method;
    if (where == "local" || where == "farm") {
      method.placement =
          where == "local" ? Placement::kLocal : Placement::kFarm;
      // farm:serialx10, farm:serial*10, "farm:serial x10".
      const size_t x = mode.find_first_of("x*");
      if (x != absl::string_view::npos &&
          method.placement == Placement::kFarm) {
        int workers = 0;
        if (!absl::SimpleAtoi(mode.substr(x + 1), &workers) || workers < 1 ||
            workers > 1000) {
          return bad("the worker count after x must be 1..1000");
        }
        method.workers = workers;
        mode = absl::StripAsciiWhitespace(mode.substr(0, x));
      }
      if (mode != "serial" && mode != "thread" && mode != "async" &&
          mode != "auto") {
        return bad("the mode must be serial, thread, async or auto");
      }
    } else if (where == "py" || where == "python") {
      method.placement = Placement::kPython;
      if (mode != "sequential" && mode != "process" && mode != "thread" &&
          mode != "asyncio" && mode != "uvloop") {
        return bad(
            "the Python method must be sequential, process, thread, asyncio "
            "or uvloop");
      }
    } else {
      return bad("expected local:, farm: or py: before the mode");
    }
    method.mode = std::string(mode);
    methods.push_back(method);
  }
  if (methods.empty()) return absl::InvalidArgumentError("--methods is empty");
  return methods;
}

int64_t DefaultSlots(const Workload& w, absl::string_view mode, int cores) {
  if (mode == "serial" || mode == "sequential") return 1;
  const bool loop = mode == "async" || mode == "auto" || mode == "asyncio" ||
                    mode == "uvloop";
  switch (w.kind) {
    case WorkloadKind::kSeed:
      return 10;
    case WorkloadKind::kLatency:
    case WorkloadKind::kQueue:
      return 1;
    case WorkloadKind::kEcho:
    case WorkloadKind::kSoak:
      return loop ? 10'000 : std::max(1, cores);
    case WorkloadKind::kCpu:
      return loop ? w.tasks : std::max(1, cores);
    case WorkloadKind::kScale:
    case WorkloadKind::kHttp:
    case WorkloadKind::kMixed:
    case WorkloadKind::kCustom:
      return loop ? w.tasks : std::min<int64_t>(w.tasks, 1'000);
  }
  return 1;
}

int DefaultWorkers(const Workload& w, absl::string_view mode, int cores) {
  const bool throughput = w.kind == WorkloadKind::kEcho ||
                          w.kind == WorkloadKind::kSoak ||
                          w.kind == WorkloadKind::kCpu;
  if (w.kind == WorkloadKind::kLatency || w.kind == WorkloadKind::kQueue) {
    return 1;
  }
  if (mode == "serial") {
    if (throughput) return std::max(1, cores);
    return static_cast<int>(std::min<int64_t>(w.tasks, 10));
  }
  if (w.kind == WorkloadKind::kSoak) return 2;
  return w.kind == WorkloadKind::kEcho ? std::max(1, cores) : 1;
}

}  // namespace qfarm::bench
