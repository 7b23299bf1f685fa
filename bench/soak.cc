#include "bench/soak.h"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bench/child_process.h"
#include "bench/farm_processes.h"
#include "bench/report.h"
#include "bench/usage.h"
#include "client/farm_client.h"
#include "common/json.h"

namespace qfarm::bench {
namespace {

constexpr absl::string_view kListening = "qfarm-coordinator listening on ";
constexpr int64_t kReferenceJob = 10;
constexpr int kDefaultWorkers = 2;
constexpr absl::Duration kRestartTimeout = absl::Seconds(300);
constexpr absl::Duration kStopGrace = absl::Seconds(30);

int64_t NowMicros() { return absl::GetCurrentTimeNanos() / 1000; }

std::string Bytes(int64_t bytes) {
  return FormatBytes(static_cast<double>(bytes));
}

std::string Number(double value) {
  if (!std::isfinite(value)) return "null";
  return absl::StrFormat("%.9g", value);
}

// The coordinator's figures now; job and timing fields are the caller's.
SoakSample Sample(pid_t pid, const std::string& data_dir) {
  SoakSample sample;
  if (absl::StatusOr<Usage> usage = ReadProcessUsage(pid); usage.ok()) {
    sample.rss_bytes = usage->rss_bytes;
  }
  sample.journal_bytes = JournalBytes(data_dir);
  if (absl::StatusOr<int64_t> fds = CountOpenFds(pid); fds.ok()) {
    sample.fds = *fds;
  }
  return sample;
}

std::string SampleSummary(const SoakSample& s) {
  return absl::StrCat("RSS ", Bytes(s.rss_bytes), ", journal ",
                      Bytes(s.journal_bytes), ", ", s.fds, " fds");
}

// Starts the coordinator again on the data directory and times it from
// exec to its listening line; then samples it and stops it.
void Restart(const std::vector<std::string>& argv, const std::string& log_dir,
             const std::string& data_dir, SoakReport& report) {
  const std::string log = log_dir + "/coordinator-restart.log";
  const int64_t start_us = NowMicros();
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start(argv, {.stderr_path = log, .pipe_stdout = true});
  if (!child.ok()) {
    report.error = absl::StrCat("restart: ", child.status().message());
    return;
  }
  absl::StatusOr<std::string> line = (*child)->ReadLine(kRestartTimeout);
  const int64_t listening_us = NowMicros();
  if (!line.ok() || !absl::StartsWith(*line, kListening)) {
    report.error = absl::StrCat("restart: qfarm-coordinator did not start (",
                                line.ok() ? *line : line.status().message(),
                                "); see ", log);
  } else {
    report.restart_s = static_cast<double>(listening_us - start_us) / 1e6;
    report.restarted = Sample((*child)->pid(), data_dir);
    report.restarted.job = report.jobs.empty() ? 0 : report.jobs.back().job;
    report.restarted.tasks_so_far =
        report.jobs.empty() ? 0 : report.jobs.back().tasks_so_far;
  }
  (*child)->Stop(kStopGrace);
}

}  // namespace

bool SoakReport::ok() const {
  if (!error.empty() || restart_s < 0) return false;
  return std::all_of(jobs.begin(), jobs.end(), [this](const SoakSample& s) {
    return s.ok == tasks_per_job;
  });
}

int64_t SoakReferenceJob(int64_t jobs) { return std::min(jobs, kReferenceJob); }

SoakRatios ComputeSoakRatios(const std::vector<SoakSample>& jobs) {
  SoakRatios r;
  if (jobs.empty()) return r;
  r.reference_job = SoakReferenceJob(static_cast<int64_t>(jobs.size()));
  r.last_job = static_cast<int64_t>(jobs.size());
  const SoakSample& ref = jobs[static_cast<size_t>(r.reference_job - 1)];
  const SoakSample& last = jobs.back();
  const auto ratio = [](int64_t a, int64_t b) {
    return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
  };
  r.rss = ratio(last.rss_bytes, ref.rss_bytes);
  r.journal = ratio(last.journal_bytes, ref.journal_bytes);
  return r;
}

int64_t JournalBytes(const std::string& data_dir) {
  int64_t total = 0;
  for (const char* name : {"/journal.db", "/journal.db-wal"}) {
    std::error_code error;
    const uintmax_t size = std::filesystem::file_size(data_dir + name, error);
    if (!error) total += static_cast<int64_t>(size);
  }
  return total;
}

absl::StatusOr<int64_t> CountOpenFds(pid_t pid) {
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  std::error_code error;
  std::filesystem::directory_iterator it(dir, error);
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("cannot list ", dir, ": ", error.message()));
  }
  int64_t count = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) break;
    ++count;
  }
  return count;
}

SoakReport RunSoak(const RunContext& context,
                   const std::function<void(int64_t job)>& on_job) {
  const Workload& w = *context.workload;
  const std::vector<v1::Task>& tasks = *context.tasks;
  SoakReport report;
  report.title = w.Title();
  report.cores = context.cores;
  report.tasks_per_job = static_cast<int64_t>(tasks.size());
  report.workers = context.workers > 0 ? context.workers : kDefaultWorkers;
  const int64_t slots = context.slots > 0
                            ? context.slots
                            : DefaultSlots(w, "async", context.cores);
  const std::string data_dir = context.log_dir + "/soak-data";
  const std::vector<std::string> flags = {
      absl::StrCat("--max-queued=",
                   std::max<int64_t>(1'000'000, report.tasks_per_job)),
      absl::StrCat("--max-tasks-per-job=",
                   std::max<int64_t>(1'000'000, report.tasks_per_job)),
      absl::StrCat("--data-dir=", data_dir),
      absl::StrCat("--retain-finished=",
                   absl::FormatDuration(w.retain_finished))};

  absl::StatusOr<std::unique_ptr<FarmProcesses>> farm =
      FarmProcesses::Start({.bin_dir = context.bin_dir,
                            .worker_binary = context.worker_binary,
                            .log_dir = context.log_dir,
                            .mode = "async",
                            .workers = report.workers,
                            .slots = slots,
                            .coordinator_flags = flags});
  if (!farm.ok()) {
    report.error = std::string(farm.status().message());
    return report;
  }
  const pid_t pid = (*farm)->coordinator_pid();
  std::unique_ptr<client::FarmClient> client =
      client::FarmClient::Create({.address = (*farm)->address()});
  report.before = Sample(pid, data_dir);

  int64_t tasks_so_far = 0;
  for (int64_t job = 1; job <= w.jobs; ++job) {
    if (on_job) on_job(job);
    int64_t ok = 0;
    const int64_t start_us = NowMicros();
    absl::StatusOr<uint64_t> id = client->SubmitJob(tasks);
    absl::Status status = id.status();
    if (id.ok()) {
      status = client->WatchJob(*id, [&](v1::TaskResult&& result) {
        if (result.state() == v1::TASK_STATE_OK) ++ok;
        if (context.progress != nullptr) {
          context.progress->fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    const int64_t end_us = NowMicros();
    tasks_so_far += report.tasks_per_job;
    SoakSample sample = Sample(pid, data_dir);
    sample.job = job;
    sample.tasks_so_far = tasks_so_far;
    sample.ok = ok;
    sample.job_s = static_cast<double>(end_us - start_us) / 1e6;
    report.jobs.push_back(sample);
    if (!status.ok()) {
      report.error = absl::StrCat("job ", job, ": ", status.message(), " (",
                                  absl::StatusCodeToString(status.code()), ")");
      break;
    }
  }
  client.reset();

  // kill -9 right after the last job: the journal as it is then, released
  // jobs' rows perhaps not yet deleted, the retained ones still there.
  ::kill(pid, SIGKILL);
  (*farm)->Stop();
  if (!report.error.empty()) return report;
  std::vector<std::string> argv = {context.bin_dir + "/qfarm-coordinator",
                                   "--listen=127.0.0.1:0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  Restart(argv, context.log_dir, data_dir, report);
  return report;
}

std::string FormatSoakTable(const SoakReport& report) {
  constexpr char kLine[] = "%6s %12s %10s %10s %6s %8s  %s\n";
  std::string out = absl::StrCat(
      report.title, "; a coordinator and ", report.workers, " async workers (",
      report.cores, " cores)\n",
      "before the first job: ", SampleSummary(report.before), "\n");
  absl::StrAppendFormat(&out, kLine, "JOB", "TASKS", "RSS", "JOURNAL", "FDS",
                        "JOB-S", "NOTE");
  for (const SoakSample& s : report.jobs) {
    absl::StrAppendFormat(
        &out, kLine, absl::StrCat(s.job), absl::StrCat(s.tasks_so_far),
        Bytes(s.rss_bytes), Bytes(s.journal_bytes), absl::StrCat(s.fds),
        absl::StrFormat("%.3f", s.job_s),
        s.ok == report.tasks_per_job
            ? ""
            : absl::StrCat(report.tasks_per_job - s.ok, " tasks not OK"));
  }
  const SoakRatios r = ComputeSoakRatios(report.jobs);
  if (r.reference_job > 0) {
    const SoakSample& ref =
        report.jobs[static_cast<size_t>(r.reference_job - 1)];
    const SoakSample& last = report.jobs.back();
    absl::StrAppendFormat(&out, "RSS job %d / job %d: %.3f (%s / %s)\n",
                          r.last_job, r.reference_job, r.rss,
                          Bytes(last.rss_bytes), Bytes(ref.rss_bytes));
    absl::StrAppendFormat(&out, "journal job %d / job %d: %.3f (%s / %s)\n",
                          r.last_job, r.reference_job, r.journal,
                          Bytes(last.journal_bytes), Bytes(ref.journal_bytes));
  }
  if (report.restart_s >= 0) {
    absl::StrAppendFormat(
        &out, "restart after kill -9: %.3f s to listening (then %s)\n",
        report.restart_s, SampleSummary(report.restarted));
  } else {
    absl::StrAppend(&out, "restart after kill -9: not measured\n");
  }
  if (!report.error.empty())
    absl::StrAppend(&out, "error: ", report.error, "\n");
  absl::StrAppend(
      &out,
      "RSS: the coordinator's VmRSS after the job. JOURNAL: journal.db + "
      "journal.db-wal. FDS: its open descriptors. JOB-S: submit to the last "
      "result.\n");
  return out;
}

std::string FormatSoakJson(const SoakReport& report) {
  const auto sample_json = [](const SoakSample& s) {
    return absl::StrCat(
        "{\"job\":", s.job, ",\"tasks_so_far\":", s.tasks_so_far,
        ",\"ok\":", s.ok, ",\"rss_bytes\":", s.rss_bytes,
        ",\"journal_bytes\":", s.journal_bytes, ",\"fds\":", s.fds,
        ",\"job_s\":", Number(s.job_s), "}");
  };
  const SoakRatios r = ComputeSoakRatios(report.jobs);
  std::string out = absl::StrCat(
      "{\"workload\":\"soak\",\"title\":", JsonString(report.title),
      ",\"cores\":", report.cores, ",\"tasks_per_job\":", report.tasks_per_job,
      ",\"workers\":", report.workers,
      ",\"before\":", sample_json(report.before), ",\"jobs\":[");
  for (size_t i = 0; i < report.jobs.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? ",\n" : "\n", sample_json(report.jobs[i]));
  }
  absl::StrAppend(&out, "\n],\"ratios\":{\"reference_job\":", r.reference_job,
                  ",\"last_job\":", r.last_job, ",\"rss\":", Number(r.rss),
                  ",\"journal\":", Number(r.journal), "},\"restart_s\":",
                  report.restart_s >= 0 ? Number(report.restart_s) : "null",
                  ",\"restarted\":", sample_json(report.restarted),
                  ",\"error\":", JsonString(report.error), "}\n");
  return out;
}

std::string FormatSoakCsv(const SoakReport& report) {
  std::string out = "job,tasks_so_far,ok,rss_bytes,journal_bytes,fds,job_s\n";
  for (const SoakSample& s : report.jobs) {
    absl::StrAppend(
        &out,
        absl::StrJoin({absl::StrCat(s.job), absl::StrCat(s.tasks_so_far),
                       absl::StrCat(s.ok), absl::StrCat(s.rss_bytes),
                       absl::StrCat(s.journal_bytes), absl::StrCat(s.fds),
                       Number(s.job_s)},
                      ","),
        "\n");
  }
  return out;
}

std::string FormatSoakSvg(const SoakReport& report) {
  constexpr int kWidth = 960;
  constexpr int kHeight = 440;
  constexpr int kLeft = 90;
  constexpr int kRight = 920;
  constexpr int kTop = 80;
  constexpr int kBottom = 380;
  constexpr char kRssColour[] = "#1f77b4";
  constexpr char kJournalColour[] = "#ff7f0e";
  const int64_t jobs = static_cast<int64_t>(report.jobs.size());
  int64_t max_bytes = 1;
  for (const SoakSample& s : report.jobs) {
    max_bytes = std::max({max_bytes, s.rss_bytes, s.journal_bytes});
  }
  const auto x_of = [&](int64_t job) {
    if (jobs <= 1) return kLeft;
    return kLeft + static_cast<int>(std::lround(static_cast<double>(job - 1) /
                                                static_cast<double>(jobs - 1) *
                                                (kRight - kLeft)));
  };
  const auto y_of = [&](int64_t bytes) {
    return kBottom - static_cast<int>(std::lround(
                         static_cast<double>(bytes) /
                         static_cast<double>(max_bytes) * (kBottom - kTop)));
  };
  const SoakRatios r = ComputeSoakRatios(report.jobs);
  std::string out = SvgChartHeader(
      kWidth, kHeight, report.title,
      absl::StrFormat("coordinator RSS and journal size after each job; last "
                      "/ job %d: RSS %.3f, journal %.3f; %d cores",
                      r.reference_job, r.rss, r.journal, report.cores));
  // Legend.
  absl::StrAppendFormat(
      &out,
      "<rect x=\"%d\" y=\"58\" width=\"12\" height=\"12\" fill=\"%s\"/>"
      "<text x=\"%d\" y=\"69\">RSS</text>\n"
      "<rect x=\"%d\" y=\"58\" width=\"12\" height=\"12\" fill=\"%s\"/>"
      "<text x=\"%d\" y=\"69\">journal (db + wal)</text>\n",
      kLeft, kRssColour, kLeft + 16, kLeft + 80, kJournalColour, kLeft + 96);
  // Axes and their ticks.
  absl::StrAppendFormat(&out,
                        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                        "stroke=\"#000000\"/>\n"
                        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                        "stroke=\"#000000\"/>\n",
                        kLeft, kTop, kLeft, kBottom, kLeft, kBottom, kRight,
                        kBottom);
  for (int i = 0; i <= 4; ++i) {
    const int64_t bytes = max_bytes * i / 4;
    const int y = y_of(bytes);
    absl::StrAppendFormat(&out,
                          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                          "stroke=\"#dddddd\"/>"
                          "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s"
                          "</text>\n",
                          kLeft + 1, y, kRight, y, kLeft - 6, y + 4,
                          XmlEscape(Bytes(bytes)));
  }
  if (jobs > 0) {
    for (int64_t job : {int64_t{1}, (jobs + 1) / 2, jobs}) {
      absl::StrAppendFormat(&out,
                            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">"
                            "%d</text>\n",
                            x_of(job), kBottom + 18, job);
    }
    const int ref_x = x_of(r.reference_job);
    absl::StrAppendFormat(&out,
                          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                          "stroke=\"#888888\" stroke-dasharray=\"4,3\"/>\n",
                          ref_x, kTop, ref_x, kBottom);
  }
  absl::StrAppendFormat(&out,
                        "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">job"
                        "</text>\n",
                        (kLeft + kRight) / 2, kBottom + 40);
  for (bool rss : {true, false}) {
    std::vector<std::string> points;
    for (const SoakSample& s : report.jobs) {
      points.push_back(absl::StrCat(x_of(s.job), ",",
                                    y_of(rss ? s.rss_bytes : s.journal_bytes)));
    }
    absl::StrAppendFormat(&out,
                          "<polyline fill=\"none\" stroke=\"%s\" "
                          "stroke-width=\"2\" points=\"%s\"/>\n",
                          rss ? kRssColour : kJournalColour,
                          absl::StrJoin(points, " "));
  }
  absl::StrAppendFormat(
      &out,
      "<text x=\"12\" y=\"%d\" fill=\"#444444\" font-size=\"11\">%s</text>\n",
      kHeight - 8,
      XmlEscape(
          report.restart_s >= 0
              ? absl::StrFormat("restart after kill -9: %.3f s to listening",
                                report.restart_s)
              : std::string("restart after kill -9: not measured")));
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

}  // namespace qfarm::bench
