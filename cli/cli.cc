#include "cli/cli.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "cli/job_list.h"
#include "cli/progress.h"
#include "cli/result_format.h"
#include "client/farm_client.h"
#include "client/interrupt.h"
#include "client/local_pool.h"
#include "common/abbreviate.h"
#include "common/auth.h"
#include "common/common_flags.h"
#include "common/flags.h"
#include "common/grpc_options.h"
#include "common/process.h"
#include "common/signals.h"
#include "common/task_spec.h"

// --coordinator, --output, --mode, --slots, --tls-*, --token-file:
// common/common_flags.h.
ABSL_FLAG(std::string, from, "",
          "read task specs from FILE, one a line (- for stdin; blank lines and "
          "lines starting with # are skipped)");
ABSL_FLAG(int64_t, repeat, 1, "repeat the list of specs N times");
ABSL_FLAG(bool, local, false,
          "run in this process on a local pool instead of the farm");
ABSL_FLAG(absl::Duration, timeout, absl::ZeroDuration(),
          "default per-task timeout for specs without @timeout= (0: none)");
ABSL_FLAG(std::string, progress, "auto",
          "a progress line on stderr for map and watch: auto (when stderr is "
          "a terminal), always or never");
ABSL_FLAG(std::string, state, "",
          "with jobs: only jobs that are running, done, failed or cancelled");
ABSL_FLAG(int64_t, limit, 20, "with jobs: at most N jobs, newest first");

namespace qfarm::client {
namespace {

constexpr char kUsage[] = R"(usage: qfarm [flags] COMMAND [ARGS...]

Runs tasks on a qfarm coordinator and its workers, or in this process with
--local. Flags may stand before or after the command.

Commands:
  map SPEC...      run tasks, print results in input order; wait for all
  submit SPEC...   submit tasks as a job, print its id, do not wait
  watch JOB        print a job's results as they complete; wait for all
  status JOB       print a job's counters (no JOB: the running jobs)
  jobs             list the jobs the coordinator holds, newest first
  cancel JOB       cancel a job's unfinished tasks
  workers          list the connected workers
  bench            run one workload every way and compare (qfarm bench --help)
  help [COMMAND]   show help

A task SPEC is KIND:ARG[@timeout=DURATION,attempts=N]:
  sleep:1s  sleep:250ms     wait (the seed's simulated query); value: ms slept
  echo:hello                return the payload; no work
  cpu:20000                 SHA-256 iterated N times; value: hex digest
  http:http://HOST/PATH     GET; value: status, bytes, body digest, timings
  KIND:ARG                  any kind a worker offers (reverse:hello); ARG is
                            its text
Exit status: 0 all tasks ok, 1 a task failed or an error, 2 usage error.)";

struct CommandHelp {
  const char* name;
  const char* text;
};

constexpr CommandHelp kCommandHelp[] = {
    {"map",
     R"(usage: qfarm map [--from=FILE|-] [--repeat=N] [--output=text|json]
                 [--local --mode=MODE --slots=N] SPEC...

Runs the tasks as one job and prints one line per result in input order:
index, status, the executor that ran it (worker/executor, like the seed's
ThreadPoolExecutor-0_1), then the value or the error. --output=json prints
JSON Lines instead. On a terminal, a progress line on stderr shows the
counts, the rate and the time left (--progress). A summary goes to stderr,
with the time from submitting the job to its last result: job 12 on
HOST:PORT: 40 tasks: 40 ok, ... in 1.008 s (submitted to last result).)"},
    {"submit", R"(usage: qfarm submit [--from=FILE|-] [--repeat=N] SPEC...

Submits the tasks as one job and prints the job id; `qfarm watch JOB`
follows it.)"},
    {"watch", R"(usage: qfarm watch [--output=text|json] JOB

Prints the job's results in completion order, those already done first,
and returns when every task has a result. On a terminal, a progress line on
stderr (--progress). The summary gives the job's own time, from its
submission to its last result, and how long this watch took when that
differs: job 12: 40 tasks: ... in 3.004 s (submitted to last result),
watched for 0.412 s.)"},
    {"status", R"(usage: qfarm status [JOB]

Prints how many of the job's tasks are queued, running, ok, failed, timed
out and cancelled, and how many wait for a kind no connected worker
offers. Without JOB: the running jobs, as `qfarm jobs --state=running`.)"},
    {"jobs",
     R"(usage: qfarm jobs [--state=running|done|failed|cancelled] [--limit=N]
                  [--output=text|json]

Lists the jobs the coordinator holds, newest first, one a line: id, state,
tasks, their counts by status, tasks/s, wall time (submitted to last
result, or to now while running), age, and the client that submitted it
(its address, or the common name of its TLS certificate). --limit (default
20) bounds the list; --output=json prints JSON Lines.)"},
    {"cancel", R"(usage: qfarm cancel JOB

Cancels the job's unfinished tasks: queued ones never start, running ones
are stopped; each reports cancelled.)"},
    {"workers", R"(usage: qfarm workers

Lists the workers connected to the coordinator: id, mode, slots, tasks in
flight, tasks completed, address, and the kinds each offers.)"},
};

// Whether the command is "bench", before the CLI's flags are parsed (bench
// has flags of its own that the parser does not know): the first argument
// that is not a flag is "bench" (flags before it count as `--name=value` or
// boolean). Returns its position.
std::optional<size_t> BenchWordAt(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") break;
    if (args[i].size() > 1 && args[i][0] == '-') continue;
    if (args[i] == "bench") return i;
    break;
  }
  return std::nullopt;
}

// Every flag of every command, in the order of the help.
std::vector<FlagSpec> AllFlags() {
  std::vector<FlagSpec> flags = {
      CoordinatorFlag(),
      Flag(FLAGS_output, "text or json (JSON Lines)"),
      Flag(FLAGS_from),
      Flag(FLAGS_repeat, 1, 100'000'000),
      Flag(FLAGS_local),
      Flag(FLAGS_mode, "with --local: serial, thread, async or auto"),
      Flag(FLAGS_slots, 0, 1'000'000,
           "with --local: tasks at once (0: 4 for thread, 10000 for async "
           "and auto)"),
      Flag(FLAGS_timeout),
      Flag(FLAGS_progress),
      Flag(FLAGS_state),
      Flag(FLAGS_limit, 1, 1'000'000)};
  for (FlagSpec& flag : ConnectionFlags("client")) {
    flags.push_back(std::move(flag));
  }
  return flags;
}

const CommandLine& Flags() {
  static const auto* const flags = new CommandLine(kUsage, AllFlags());
  return *flags;
}

// The flags' values, once parsed.
struct Options {
  std::string coordinator;
  std::string output;
  std::string from;
  int64_t repeat = 1;
  bool local = false;
  std::string mode;
  int64_t slots = 0;
  absl::Duration timeout;
  std::string progress;
  std::string state;
  int64_t limit = 20;
  TlsFiles tls;
  std::string token_file;
};

Options OptionsFromFlags() {
  return {.coordinator = absl::GetFlag(FLAGS_coordinator),
          .output = absl::GetFlag(FLAGS_output),
          .from = absl::GetFlag(FLAGS_from),
          .repeat = absl::GetFlag(FLAGS_repeat),
          .local = absl::GetFlag(FLAGS_local),
          .mode = absl::GetFlag(FLAGS_mode),
          .slots = absl::GetFlag(FLAGS_slots),
          .timeout = absl::GetFlag(FLAGS_timeout),
          .progress = absl::GetFlag(FLAGS_progress),
          .state = absl::GetFlag(FLAGS_state),
          .limit = absl::GetFlag(FLAGS_limit),
          .tls = {.cert = absl::GetFlag(FLAGS_tls_cert),
                  .key = absl::GetFlag(FLAGS_tls_key),
                  .ca = absl::GetFlag(FLAGS_tls_ca)},
          .token_file = absl::GetFlag(FLAGS_token_file)};
}

class Cli {
 public:
  Cli(const CliStreams& io, std::string default_coordinator, BenchCommand bench,
      const Kinds* kinds)
      : io_(io),
        bench_(std::move(bench)),
        default_coordinator_(std::move(default_coordinator)),
        kinds_(kinds) {}

  int Run(const std::vector<std::string>& raw_args) {
    if (bench_) {
      if (std::optional<size_t> at = BenchWordAt(raw_args)) {
        return RunBench(raw_args, *at);
      }
    }
    absl::StatusOr<ParsedArgs> parsed = Flags().Parse(raw_args);
    if (!parsed.ok()) return Usage(parsed.status().message());
    options_ = OptionsFromFlags();
    if (options_.coordinator.empty()) {
      options_.coordinator = default_coordinator_;
    }
    const std::vector<std::string>& args = parsed->positional;
    if (options_.output != "text" && options_.output != "json") {
      return Usage(absl::StrCat("--output=", Abbreviate(options_.output),
                                ": expected text or json"));
    }
    if (args.empty() || args[0] == "help") {
      if (args.size() > 1) return Help(args[1]);
      *io_.out << Flags().Help();
      return args.empty() && !parsed->help ? kExitUsage : kExitOk;
    }
    const std::string& command = args[0];
    if (command == "bench" && bench_) {
      // Flags given as `--name value` before the word: the parser found it.
      return RunBench(raw_args,
                      static_cast<size_t>(
                          std::find(raw_args.begin(), raw_args.end(), "bench") -
                          raw_args.begin()));
    }
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (parsed->help) return Help(command);
    const bool takes_specs = command == "map" || command == "submit";
    if (!takes_specs && (parsed->Given("from") || parsed->Given("repeat"))) {
      return Usage(
          absl::StrCat("--from and --repeat do not apply to ", command));
    }
    if (command != "map" && (parsed->Given("local") || parsed->Given("mode") ||
                             parsed->Given("slots"))) {
      return Usage(
          absl::StrCat("--local, --mode and --slots apply to map "
                       "only, not to ",
                       command));
    }
    if (command != "map" && command != "watch" && parsed->Given("progress")) {
      return Usage(absl::StrCat(
          "--progress applies to map and watch only, not to ", command));
    }
    if (options_.progress != "auto" && options_.progress != "always" &&
        options_.progress != "never") {
      return Usage(absl::StrCat("--progress=", Abbreviate(options_.progress),
                                ": expected auto, always or never"));
    }
    const bool lists_jobs =
        command == "jobs" || (command == "status" && rest.empty());
    if (!lists_jobs && (parsed->Given("state") || parsed->Given("limit"))) {
      return Usage(absl::StrCat(
          "--state and --limit apply to jobs only, not to ", command));
    }
    const bool needs_farm = !(command == "map" && options_.local);
    if (needs_farm) {
      absl::StatusOr<FarmClient*> client = Client();
      if (!client.ok()) return Usage(client.status().message());
      farm_ = *client;
    }
    if (command == "map") return Map(rest);
    if (command == "submit") return Submit(rest);
    if (command == "watch") return Watch(rest);
    if (command == "status") return Status(rest, parsed->Given("state"));
    if (command == "jobs") return Jobs(rest);
    if (command == "cancel") return Cancel(rest);
    if (command == "workers") return Workers(rest);
    return Usage(absl::StrCat("unknown command \"", Abbreviate(command),
                              "\" (commands: map, submit, watch, status, "
                              "jobs, cancel, workers, bench, help)"));
  }

 private:
  // `qfarm bench`: every argument but the word itself goes to the bench.
  int RunBench(const std::vector<std::string>& raw_args, size_t word) {
    std::vector<std::string> args = raw_args;
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(word));
    return bench_(args, io_);
  }

  int Usage(absl::string_view message) {
    *io_.err << "qfarm: " << message << "\n";
    return kExitUsage;
  }

  int Error(absl::string_view what, const absl::Status& status) {
    *io_.err << "qfarm: " << what << ": " << status.message() << " ("
             << absl::StatusCodeToString(status.code()) << ")\n";
    return kExitFailed;
  }

  int Help(const std::string& command) {
    if (command == "bench" && bench_) return bench_({"--help"}, io_);
    for (const CommandHelp& help : kCommandHelp) {
      if (command == help.name) {
        *io_.out << help.text << "\n";
        return kExitOk;
      }
    }
    *io_.out << Flags().Help();
    return kExitOk;
  }

  // The client for the coordinator; usage errors for bad TLS or token files.
  absl::StatusOr<FarmClient*> Client() {
    if (client_ == nullptr) {
      absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
          MakeChannelCredentials(options_.tls);
      if (!credentials.ok()) return credentials.status();
      std::string token;
      if (!options_.token_file.empty()) {
        absl::StatusOr<std::string> read = ReadTokenFile(options_.token_file);
        if (!read.ok()) return read.status();
        token = *std::move(read);
      }
      client_ = FarmClient::Create({.address = options_.coordinator,
                                    .credentials = *credentials,
                                    .token = token});
    }
    return client_.get();
  }

  // Specs from the arguments and --from, repeated --repeat times.
  absl::StatusOr<std::vector<v1::Task>> ReadTasks(
      const std::vector<std::string>& args) {
    std::vector<std::string> specs = args;
    if (!options_.from.empty()) {
      std::ifstream file;
      std::istream* in = io_.in;
      if (options_.from != "-") {
        file.open(options_.from);
        if (!file) {
          return absl::InvalidArgumentError(absl::StrCat(
              "--from=", Abbreviate(options_.from), ": cannot open the file"));
        }
        in = &file;
      }
      std::string line;
      while (std::getline(*in, line)) {
        absl::string_view spec = absl::StripAsciiWhitespace(line);
        if (spec.empty() || spec[0] == '#') continue;
        specs.emplace_back(spec);
      }
    }
    if (specs.empty()) {
      return absl::InvalidArgumentError(
          "no task specs given (for example: qfarm map sleep:1s echo:hi)");
    }
    std::vector<v1::Task> tasks;
    tasks.reserve(specs.size() * static_cast<size_t>(options_.repeat));
    // A farm's coordinator checks its own limits (its flags may raise
    // them); here only the rules. --local runs under the default limits.
    const TaskLimits limits = options_.local ? TaskLimits{} : NoTaskLimits();
    for (const std::string& spec : specs) {
      absl::StatusOr<v1::Task> task = ParseTaskSpec(spec, limits);
      if (!task.ok()) return task.status();
      if (task->timeout_ms() == 0 && options_.timeout > absl::ZeroDuration()) {
        task->set_timeout_ms(absl::ToInt64Milliseconds(options_.timeout));
      }
      tasks.push_back(*std::move(task));
    }
    const size_t base = tasks.size();
    for (int64_t r = 1; r < options_.repeat; ++r) {
      for (size_t i = 0; i < base; ++i) tasks.push_back(tasks[i]);
    }
    return tasks;
  }

  void Print(const v1::TaskResult& result) {
    *io_.out << (options_.output == "json" ? FormatResultJson(result)
                                           : FormatResultText(result))
             << "\n";
  }

  // Counts outcomes for the summary and the exit code.
  struct Tally {
    size_t total = 0, ok = 0, failed = 0, timed_out = 0, cancelled = 0;
    void Add(const v1::TaskResult& r) {
      ++total;
      switch (r.state()) {
        case v1::TASK_STATE_OK:
          ++ok;
          break;
        case v1::TASK_STATE_TIMED_OUT:
          ++timed_out;
          break;
        case v1::TASK_STATE_CANCELLED:
          ++cancelled;
          break;
        default:
          ++failed;
      }
    }
    bool all_ok() const { return ok == total; }
  };

  // "job 12 on HOST:PORT: 40 tasks: 40 ok, 0 failed, 0 timed out, 0
  // cancelled in 1.008 s (submitted to last result)": `what` ran, and what
  // `elapsed` measured.
  // `then` follows it.
  void Summary(absl::string_view what, const Tally& tally,
               absl::Duration elapsed, absl::string_view measured,
               absl::string_view then = "") {
    *io_.err << absl::StrFormat(
        "%s: %d tasks: %d ok, %d failed, %d timed out, %d cancelled in %.3f s "
        "(%s)%s\n",
        what, tally.total, tally.ok, tally.failed, tally.timed_out,
        tally.cancelled, absl::ToDoubleSeconds(elapsed), measured, then);
  }

  bool ShowProgress() const {
    return options_.progress == "always" ||
           (options_.progress == "auto" && io_.err_is_terminal);
  }

  // A progress line for a job of the farm: its running tasks come from
  // GetJob, asked at most once a second. `done_before` of its results were
  // done when it started.
  std::unique_ptr<ProgressLine> FarmProgress(uint64_t job, uint64_t total,
                                             uint64_t done_before = 0) {
    FarmClient* client = farm_;
    return std::make_unique<ProgressLine>(
        io_.err,
        ProgressLine::Options{.label = absl::StrCat("[job ", job, "]"),
                              .total = total,
                              .running = [client, job](const ProgressCounts&)
                                  -> std::optional<uint64_t> {
                                // Short: Stop() waits for it.
                                absl::StatusOr<v1::JobInfo> info =
                                    client->GetJob(job, absl::Seconds(1));
                                if (!info.ok()) return std::nullopt;
                                return info->running();
                              },
                              .done_before = done_before,
                              .columns = io_.err_columns});
  }

  int Map(const std::vector<std::string>& args) {
    absl::StatusOr<std::vector<v1::Task>> tasks = ReadTasks(args);
    if (!tasks.ok()) return Usage(tasks.status().message());
    // Results arrive in completion order; lines go out in input order as
    // soon as every earlier index has arrived.
    std::map<uint32_t, v1::TaskResult> waiting;
    uint32_t next = 0;
    Tally tally;
    std::unique_ptr<ProgressLine> progress;
    auto print_ready = [&] {
      for (auto it = waiting.begin(); it != waiting.end() && it->first == next;
           it = waiting.erase(it), ++next) {
        Print(it->second);
      }
      io_.out->flush();
    };
    auto on_result = [&](v1::TaskResult&& result) {
      tally.Add(result);
      if (progress != nullptr) progress->Add(result.state());
      const bool in_order = result.index() == next;
      waiting.emplace(result.index(), std::move(result));
      if (!in_order) return;  // Nothing to print yet.
      if (progress != nullptr && io_.out_is_terminal) {
        progress->WithLineErased(print_ready);
      } else {
        print_ready();
      }
    };
    const absl::Time start = absl::Now();
    const uint64_t total = tasks->size();
    absl::Status status;
    std::string what;
    if (options_.local) {
      absl::StatusOr<executors::Mode> mode =
          executors::ParseMode(options_.mode);
      if (!mode.ok()) {
        return Usage(absl::StrCat("--mode: ", mode.status().message()));
      }
      const int slots =
          options_.slots == 0 || *mode == executors::Mode::kSerial
              ? executors::DefaultSlots(*mode, executors::Pool::kLocal)
              : static_cast<int>(options_.slots);
      what = absl::StrCat("local ", options_.mode, ", ", slots, " slots");
      if (ShowProgress()) {
        // (The local pool does not tell how many run: no count shown.)
        progress = std::make_unique<ProgressLine>(
            io_.err, ProgressLine::Options{.label = "[local]",
                                           .total = total,
                                           .columns = io_.err_columns});
      }
      status = RunLocal(*tasks,
                        {.mode = *mode,
                         .slots = slots,
                         .interrupt = io_.interrupt,
                         .kinds = kinds_},
                        on_result);
    } else {
      absl::StatusOr<uint64_t> job = farm_->SubmitJob(*tasks);
      if (!job.ok()) return Error("submit", job.status());
      what = absl::StrCat("job ", *job, " on ", options_.coordinator);
      if (ShowProgress()) progress = FarmProgress(*job, total);
      // Ctrl-C cancels the job; the watch then receives the cancelled
      // results and ends as usual.
      FarmClient* client = farm_;
      ScopedInterruptHandler on_interrupt(io_.interrupt, [client, job] {
        absl::StatusOr<uint32_t> cancelled = client->CancelJob(*job);
        (void)cancelled;  // Reported through the results that follow.
      });
      status = client->WatchJob(*job, on_result);
    }
    const absl::Duration elapsed = absl::Now() - start;
    if (progress != nullptr) progress->Stop();
    if (!status.ok()) return Error("map", status);
    Summary(
        what, tally, elapsed,
        options_.local ? "start to last result" : "submitted to last result");
    if (io_.interrupt != nullptr && io_.interrupt->fired()) {
      *io_.err << "qfarm: interrupted: unfinished tasks were cancelled\n";
      return kExitFailed;
    }
    return tally.all_ok() && tally.total == tasks->size() ? kExitOk
                                                          : kExitFailed;
  }

  int Submit(const std::vector<std::string>& args) {
    absl::StatusOr<std::vector<v1::Task>> tasks = ReadTasks(args);
    if (!tasks.ok()) return Usage(tasks.status().message());
    absl::StatusOr<uint64_t> job = farm_->SubmitJob(*tasks);
    if (!job.ok()) return Error("submit", job.status());
    *io_.out << *job << "\n";
    return kExitOk;
  }

  absl::StatusOr<uint64_t> JobArg(const std::vector<std::string>& args) {
    uint64_t job = 0;
    if (args.size() != 1 || !absl::SimpleAtoi(args[0], &job) || job == 0) {
      return absl::InvalidArgumentError(
          "expected one job id (a positive number printed by qfarm submit)");
    }
    return job;
  }

  int Watch(const std::vector<std::string>& args) {
    absl::StatusOr<uint64_t> job = JobArg(args);
    if (!job.ok()) return Usage(job.status().message());
    Tally tally;
    std::unique_ptr<ProgressLine> progress;
    if (ShowProgress()) {
      absl::StatusOr<v1::JobInfo> info = farm_->GetJob(*job);
      if (!info.ok()) return Error("watch", info.status());
      progress = FarmProgress(*job, info->total(), JobFinished(*info));
    }
    const absl::Time start = absl::Now();
    // Ctrl-C stops watching; the job goes on.
    WatchCanceller canceller;
    ScopedInterruptHandler on_interrupt(io_.interrupt,
                                        [&canceller] { canceller.Cancel(); });
    absl::Status status = farm_->WatchJob(
        *job,
        [&](v1::TaskResult&& r) {
          tally.Add(r);
          auto print = [&] {
            Print(r);
            io_.out->flush();
          };
          if (progress == nullptr) {
            print();
          } else {
            progress->Add(r.state());
            if (io_.out_is_terminal) {
              progress->WithLineErased(print);
            } else {
              print();
            }
          }
        },
        &canceller);
    const absl::Duration watched = absl::Now() - start;
    if (progress != nullptr) progress->Stop();
    if (!status.ok()) return Error("watch", status);
    // The job's own time, by the coordinator's clock.
    const std::string what = absl::StrCat("job ", *job);
    absl::StatusOr<v1::JobInfo> info = farm_->GetJob(*job);
    if (!info.ok() || info->finished_us() == 0) {
      Summary(what, tally, watched, "watched");
    } else {
      const absl::Duration ran =
          absl::Microseconds(info->finished_us() - info->created_us());
      std::string then;
      if (absl::AbsDuration(ran - watched) >= absl::Milliseconds(1)) {
        then = absl::StrFormat(", watched for %.3f s",
                               absl::ToDoubleSeconds(watched));
      }
      Summary(what, tally, ran, "submitted to last result", then);
    }
    return tally.all_ok() ? kExitOk : kExitFailed;
  }

  int Status(const std::vector<std::string>& args, bool state_given) {
    if (args.empty()) {
      // An alias of `qfarm jobs --state=running`.
      if (!state_given) options_.state = "running";
      return Jobs(args);
    }
    absl::StatusOr<uint64_t> job = JobArg(args);
    if (!job.ok()) return Usage(job.status().message());
    absl::StatusOr<v1::JobInfo> info = farm_->GetJob(*job);
    if (!info.ok()) return Error("status", info.status());
    *io_.out << FormatJobInfo(*info) << "\n";
    return kExitOk;
  }

  int Jobs(const std::vector<std::string>& args) {
    if (!args.empty()) return Usage("jobs takes no arguments");
    v1::ListJobsRequest request;
    if (!options_.state.empty()) {
      absl::StatusOr<v1::JobState> state = ParseJobState(options_.state);
      if (!state.ok()) return Usage(state.status().message());
      request.set_state(*state);
    }
    const bool json = options_.output == "json";
    bool header = !json;
    int64_t left = options_.limit;
    do {
      request.set_page_size(
          static_cast<uint32_t>(std::min<int64_t>(left, 1000)));
      absl::StatusOr<v1::ListJobsResponse> page = farm_->ListJobs(request);
      if (!page.ok()) return Error("jobs", page.status());
      if (header) {  // Once the coordinator answered.
        *io_.out << JobTableHeader() << "\n";
        header = false;
      }
      for (const v1::JobInfo& job : page->jobs()) {
        if (left == 0) break;
        --left;
        *io_.out << (json ? FormatJobJson(job, page->as_of_us())
                          : FormatJobRow(job, page->as_of_us()))
                 << "\n";
      }
      request.set_page_token(page->next_page_token());
    } while (left > 0 && !request.page_token().empty());
    return kExitOk;
  }

  int Cancel(const std::vector<std::string>& args) {
    absl::StatusOr<uint64_t> job = JobArg(args);
    if (!job.ok()) return Usage(job.status().message());
    absl::StatusOr<uint32_t> cancelled = farm_->CancelJob(*job);
    if (!cancelled.ok()) return Error("cancel", cancelled.status());
    *io_.out << "cancelled " << *cancelled << " tasks of job " << *job << "\n";
    return kExitOk;
  }

  int Workers(const std::vector<std::string>& args) {
    if (!args.empty()) return Usage("workers takes no arguments");
    absl::StatusOr<std::vector<v1::WorkerInfo>> workers = farm_->ListWorkers();
    if (!workers.ok()) return Error("workers", workers.status());
    *io_.out << absl::StrFormat("%-20s %-7s %6s %9s %10s  %-22s %s\n", "ID",
                                "MODE", "SLOTS", "IN-FLIGHT", "COMPLETED",
                                "PEER", "KINDS");
    for (const v1::WorkerInfo& w : *workers) {
      *io_.out << absl::StrFormat("%-20s %-7s %6d %9d %10d  %-22s %s\n",
                                  w.worker_id(), w.mode(), w.slots(),
                                  w.in_flight(), w.completed(), w.peer(),
                                  absl::StrJoin(w.kinds(), ","));
    }
    return kExitOk;
  }

  CliStreams io_;
  const BenchCommand bench_;
  const std::string default_coordinator_;
  const Kinds* const kinds_;
  Options options_;
  std::unique_ptr<FarmClient> client_;
  FarmClient* farm_ = nullptr;  // client_, for commands that use the farm.
};

}  // namespace

namespace {

// The width of the terminal `fd` is; 0 when it is none or does not say.
size_t TerminalColumns(int fd) {
  struct winsize size {};
  if (ioctl(fd, TIOCGWINSZ, &size) != 0) return 0;
  return size.ws_col;
}

}  // namespace

int RunCli(const std::vector<std::string>& args,
           const std::string& default_coordinator, const CliStreams& io,
           const BenchCommand& bench, const Kinds* kinds) {
  return Cli(io, default_coordinator, bench, kinds).Run(args);
}

int RunCliMain(const std::vector<std::string>& args, const BenchCommand& bench,
               const Kinds* kinds) {
  TurnOffMutexDeadlockDetection();
  BlockTerminationSignals();
  std::ios::sync_with_stdio(false);

  Interrupt interrupt;
  std::thread([&interrupt] {
    WaitForTerminationSignal();
    if (!interrupt.Fire()) _exit(130);
    WaitForTerminationSignal();
    _exit(130);
  }).detach();

  const int code = RunCli(args, DefaultCoordinator(),
                          {.in = &std::cin,
                           .out = &std::cout,
                           .err = &std::cerr,
                           .interrupt = &interrupt,
                           .err_is_terminal = isatty(STDERR_FILENO) == 1,
                           .out_is_terminal = isatty(STDOUT_FILENO) == 1,
                           .err_columns = TerminalColumns(STDERR_FILENO)},
                          bench, kinds);
  std::cout.flush();
  return code;
}

}  // namespace qfarm::client
