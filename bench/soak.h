// `qfarm bench --workload=soak`: a coordinator that runs for months, in
// minutes. N jobs of M echo tasks, one after another, through a journaled
// farm (a qfarm-coordinator with --data-dir in the bench's temporary
// directory and a short --retain-finished, and 2 async qfarm-worker
// processes). After each job: the coordinator's VmRSS, its journal's size
// (journal.db plus journal.db-wal) and its open descriptors. After the last
// job: kill -9 the coordinator, start it again on the same data directory,
// and time it from exec to its "listening on" line.
//
//   SoakReport report = RunSoak(context, [](int64_t job) { ... });
//   std::cout << FormatSoakTable(report);
//   SoakRatios r = ComputeSoakRatios(report.jobs);  // last / job 10
//
// RunSoak blocks; the rest are pure functions. Thread-compatible.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/runners.h"

namespace qfarm::bench {

// The coordinator after one job (or before the first: job 0).
struct SoakSample {
  int64_t job = 0;
  // Tasks submitted so far, this job's included.
  int64_t tasks_so_far = 0;
  // This job's tasks that finished OK.
  int64_t ok = 0;
  // VmRSS of /proc/PID/status.
  int64_t rss_bytes = 0;
  // journal.db plus journal.db-wal in the data directory.
  int64_t journal_bytes = 0;
  // Entries of /proc/PID/fd.
  int64_t fds = 0;
  // Submit to the last result.
  double job_s = 0;
};

struct SoakReport {
  std::string title;  // Workload::Title()
  int cores = 0;
  int64_t tasks_per_job = 0;
  int workers = 0;
  SoakSample before;  // job 0: after the start, before the first job
  std::vector<SoakSample> jobs;
  // Exec to "qfarm-coordinator listening on" after kill -9 of the
  // coordinator that ran the jobs; negative when not measured.
  double restart_s = -1;
  // The restarted coordinator once listening (job = the last job).
  SoakSample restarted;
  // Why the run stopped short or the restart was not measured; empty when
  // all went well.
  std::string error;

  // Every job ran with every task OK, and the restart was measured.
  bool ok() const;
};

// The job the ratios compare against: job 10, or the last when there are
// fewer.
int64_t SoakReferenceJob(int64_t jobs);

struct SoakRatios {
  int64_t reference_job = 0;  // 0: no jobs
  int64_t last_job = 0;
  // last / reference; 0 when the reference is 0.
  double rss = 0;
  double journal = 0;
};
SoakRatios ComputeSoakRatios(const std::vector<SoakSample>& jobs);

// The size of the data directory's journal: journal.db plus journal.db-wal
// (a missing file counts 0).
int64_t JournalBytes(const std::string& data_dir);

// Entries of /proc/PID/fd. NOT_FOUND when the process is gone.
absl::StatusOr<int64_t> CountOpenFds(pid_t pid);

// Runs the soak: `context` gives the workload (kind soak), its tasks (one
// job's), the binaries' directory, the log directory (the data directory
// goes under it), --workers (0: 2) and --slots (0: the workload's
// default). `on_job` is called before each job with its number.
SoakReport RunSoak(const RunContext& context,
                   const std::function<void(int64_t job)>& on_job);

// A line per job, the ratios and the restart:
//   restart after kill -9: 0.412 s to listening (RSS 24.1MiB, ...)
std::string FormatSoakTable(const SoakReport& report);
// {"workload":"soak", ..., "jobs":[{...}], "ratios":{...},
//  "restart_s":...}
std::string FormatSoakJson(const SoakReport& report);
// A header line, then one line per job (exact bytes).
std::string FormatSoakCsv(const SoakReport& report);
// RSS and the journal's size against the job number, a line each, in a
// standalone SVG document; a dashed line marks the reference job.
std::string FormatSoakSvg(const SoakReport& report);

}  // namespace qfarm::bench
