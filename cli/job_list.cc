#include "cli/job_list.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/progress.h"
#include "common/json.h"

namespace qfarm::client {
namespace {

constexpr char kRow[] =
    "%6s  %-9s  %8s  %8s  %6s  %5s  %9s  %6s  %7s  %8s  %6s  %6s  %s";

// The client as the table shows it: "-" for none, and no control
// characters (a certificate's name is the client's to choose).
std::string PrintableClient(absl::string_view client) {
  if (client.empty()) return "-";
  std::string out(client);
  for (char& c : out) {
    if (absl::ascii_iscntrl(static_cast<unsigned char>(c))) c = '?';
  }
  return out;
}

}  // namespace

uint64_t JobFinished(const v1::JobInfo& job) {
  return uint64_t{job.ok()} + job.failed() + job.timed_out() + job.cancelled();
}

absl::StatusOr<v1::JobState> ParseJobState(absl::string_view name) {
  for (v1::JobState state : {v1::JOB_STATE_RUNNING, v1::JOB_STATE_DONE,
                             v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
    if (name == JobStateName(state)) return state;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--state=", name, ": expected running, done, failed or cancelled"));
}

absl::string_view JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_DONE:
      return "done";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

absl::Duration JobWallTime(const v1::JobInfo& job, int64_t as_of_us) {
  const int64_t end = job.finished_us() != 0 ? job.finished_us() : as_of_us;
  return absl::Microseconds(std::max<int64_t>(end - job.created_us(), 0));
}

double JobTasksPerSecond(const v1::JobInfo& job, int64_t as_of_us) {
  const double seconds = absl::ToDoubleSeconds(JobWallTime(job, as_of_us));
  return seconds > 0 ? static_cast<double>(JobFinished(job)) / seconds : 0;
}

std::string JobTableHeader() {
  return absl::StrFormat(kRow, "JOB", "STATE", "TASKS", "OK", "FAILED", "T/O",
                         "CANCELLED", "QUEUED", "RUNNING", "TASKS/S", "WALL",
                         "AGE", "CLIENT");
}

std::string FormatJobRow(const v1::JobInfo& job, int64_t as_of_us) {
  return absl::StrFormat(
      kRow, absl::StrCat(job.job_id()), JobStateName(job.state()),
      GroupThousands(job.total()), GroupThousands(job.ok()),
      GroupThousands(job.failed()), GroupThousands(job.timed_out()),
      GroupThousands(job.cancelled()), GroupThousands(job.queued()),
      GroupThousands(job.running()),
      GroupThousands(static_cast<uint64_t>(
          std::llround(JobTasksPerSecond(job, as_of_us)))),
      ShortDuration(JobWallTime(job, as_of_us)),
      ShortDuration(absl::Microseconds(as_of_us - job.created_us())),
      PrintableClient(job.client()));
}

std::string FormatJobJson(const v1::JobInfo& job, int64_t as_of_us) {
  return absl::StrCat(
      "{\"job_id\":", job.job_id(),
      ",\"state\":", JsonString(JobStateName(job.state())),
      ",\"client\":", JsonString(job.client()), ",\"total\":", job.total(),
      ",\"queued\":", job.queued(), ",\"running\":", job.running(),
      ",\"ok\":", job.ok(), ",\"failed\":", job.failed(),
      ",\"timed_out\":", job.timed_out(), ",\"cancelled\":", job.cancelled(),
      ",\"created_us\":", job.created_us(),
      ",\"finished_us\":", job.finished_us(), ",\"wall_s\":",
      absl::StrFormat("%.6f",
                      absl::ToDoubleSeconds(JobWallTime(job, as_of_us))),
      ",\"tasks_per_s\":",
      absl::StrFormat("%.1f", JobTasksPerSecond(job, as_of_us)), ",\"age_s\":",
      absl::StrFormat("%.6f",
                      static_cast<double>(as_of_us - job.created_us()) / 1e6),
      "}");
}

}  // namespace qfarm::client
