// Resource usage of the processes a benchmark involves: CPU time, context
// switches and resident memory, read from getrusage(2), wait4(2) and
// /proc/PID/{stat,status}.
//
//   ResetPeakRss();                      // this process's VmHWM := VmRSS
//   Usage before = ReadSelfUsage();
//   ... run ...
//   Usage used = Delta(before, ReadSelfUsage());
//
// Counters (CPU, context switches) are cumulative over a process's life, so
// a run's share is a Delta(); peak and current RSS are levels. Thread-safe
// (no shared state).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qfarm::bench {

struct Usage {
  double user_s = 0;
  double sys_s = 0;
  int64_t voluntary_cs = 0;
  int64_t involuntary_cs = 0;
  // VmHWM: the most resident memory the process has had (since the last
  // ResetPeakRss() for this process).
  int64_t peak_rss_bytes = 0;
  // VmRSS when read.
  int64_t rss_bytes = 0;

  double cpu_s() const { return user_s + sys_s; }
};

// Counters of `after` minus those of `before`; the RSS figures are
// `after`'s.
Usage Delta(const Usage& before, const Usage& after);

// Adds every field of `b` to `a` (usage summed over processes).
void Accumulate(Usage& a, const Usage& b);

// CPU, context switches and peak RSS (ru_maxrss, KiB) of a rusage; rss_bytes
// is left 0.
Usage FromRusage(const struct rusage& ru);

// utime and stime (fields 14 and 15, in clock ticks) of /proc/PID/stat
// text. INVALID_ARGUMENT when the text is not a stat line.
absl::Status ParseProcStat(absl::string_view text, int64_t ticks_per_second,
                           Usage* usage);

// VmHWM and VmRSS (kB), voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches of /proc/PID/status text; fields that are
// missing are left as they are.
void ParseProcStatus(absl::string_view text, Usage* usage);

// A live process: CPU from /proc/PID/stat (whole process, exited threads
// included; 10 ms resolution), RSS from /proc/PID/status, context switches
// summed over /proc/PID/task/*/status (threads that have exited are not
// counted). NOT_FOUND when the process is gone.
absl::StatusOr<Usage> ReadProcessUsage(pid_t pid);

// This process: getrusage(RUSAGE_SELF) (every thread, exited ones
// included) and VmHWM/VmRSS from /proc/self/status.
Usage ReadSelfUsage();

// Returns freed heap to the system (malloc_trim) and resets this process's
// VmHWM to its current VmRSS (/proc/self/clear_refs), so the next peak is
// the next run's. Best effort: a kernel without clear_refs keeps the old
// peak.
void ResetPeakRss();

}  // namespace qfarm::bench
