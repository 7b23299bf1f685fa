#include "bench/usage.h"

#include <dirent.h>
#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace qfarm::bench {
namespace {

constexpr int64_t kKiB = 1024;

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream file(path);
  if (!file) return false;
  std::ostringstream text;
  text << file.rdbuf();
  *out = text.str();
  return true;
}

double Seconds(const struct timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

}  // namespace

Usage Delta(const Usage& before, const Usage& after) {
  Usage d = after;
  d.user_s = after.user_s - before.user_s;
  d.sys_s = after.sys_s - before.sys_s;
  d.voluntary_cs = after.voluntary_cs - before.voluntary_cs;
  d.involuntary_cs = after.involuntary_cs - before.involuntary_cs;
  return d;
}

void Accumulate(Usage& a, const Usage& b) {
  a.user_s += b.user_s;
  a.sys_s += b.sys_s;
  a.voluntary_cs += b.voluntary_cs;
  a.involuntary_cs += b.involuntary_cs;
  a.peak_rss_bytes += b.peak_rss_bytes;
  a.rss_bytes += b.rss_bytes;
}

Usage FromRusage(const struct rusage& ru) {
  Usage u;
  u.user_s = Seconds(ru.ru_utime);
  u.sys_s = Seconds(ru.ru_stime);
  u.voluntary_cs = ru.ru_nvcsw;
  u.involuntary_cs = ru.ru_nivcsw;
  u.peak_rss_bytes = ru.ru_maxrss * kKiB;
  return u;
}

absl::Status ParseProcStat(absl::string_view text, int64_t ticks_per_second,
                           Usage* usage) {
  // "PID (comm) S ppid ...": comm may hold spaces and parentheses, so the
  // fields start after the last ')'. Field 3 (state) is the first after it.
  const size_t paren = text.rfind(')');
  if (paren == absl::string_view::npos || ticks_per_second <= 0) {
    return absl::InvalidArgumentError("not a /proc/PID/stat line");
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(text.substr(paren + 1), ' ', absl::SkipWhitespace());
  // utime is field 14, stime 15: indexes 11 and 12 counting from field 3.
  int64_t utime = 0;
  int64_t stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::InvalidArgumentError(
        "a /proc/PID/stat line without utime and stime");
  }
  usage->user_s = static_cast<double>(utime) / ticks_per_second;
  usage->sys_s = static_cast<double>(stime) / ticks_per_second;
  return absl::OkStatus();
}

void ParseProcStatus(absl::string_view text, Usage* usage) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view name = line.substr(0, colon);
    absl::string_view value =
        absl::StripAsciiWhitespace(line.substr(colon + 1));
    const bool kb = absl::ConsumeSuffix(&value, " kB");
    int64_t number = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &number)) {
      continue;
    }
    if (name == "VmHWM" && kb) {
      usage->peak_rss_bytes = number * kKiB;
    } else if (name == "VmRSS" && kb) {
      usage->rss_bytes = number * kKiB;
    } else if (name == "voluntary_ctxt_switches") {
      usage->voluntary_cs = number;
    } else if (name == "nonvoluntary_ctxt_switches") {
      usage->involuntary_cs = number;
    }
  }
}

absl::StatusOr<Usage> ReadProcessUsage(pid_t pid) {
  const std::string dir = absl::StrCat("/proc/", pid);
  std::string stat;
  std::string status;
  if (!ReadFile(dir + "/stat", &stat) || !ReadFile(dir + "/status", &status)) {
    return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
  }
  Usage usage;
  absl::Status parsed = ParseProcStat(stat, sysconf(_SC_CLK_TCK), &usage);
  if (!parsed.ok()) return parsed;
  ParseProcStatus(status, &usage);
  // The process's status counts its main thread only: sum the threads.
  if (DIR* tasks = opendir((dir + "/task").c_str()); tasks != nullptr) {
    int64_t voluntary = 0;
    int64_t involuntary = 0;
    while (const struct dirent* entry = readdir(tasks)) {
      if (entry->d_name[0] == '.') continue;
      std::string task_status;
      if (!ReadFile(absl::StrCat(dir, "/task/", entry->d_name, "/status"),
                    &task_status)) {
        continue;  // The thread exited meanwhile.
      }
      Usage thread;
      ParseProcStatus(task_status, &thread);
      voluntary += thread.voluntary_cs;
      involuntary += thread.involuntary_cs;
    }
    closedir(tasks);
    usage.voluntary_cs = voluntary;
    usage.involuntary_cs = involuntary;
  }
  return usage;
}

Usage ReadSelfUsage() {
  struct rusage ru = {};
  getrusage(RUSAGE_SELF, &ru);
  Usage usage = FromRusage(ru);
  std::string status;
  if (ReadFile("/proc/self/status", &status)) {
    ParseProcStatus(status, &usage);
    // Context switches from getrusage cover every thread; keep them.
    usage.voluntary_cs = ru.ru_nvcsw;
    usage.involuntary_cs = ru.ru_nivcsw;
  }
  return usage;
}

void ResetPeakRss() {
  malloc_trim(0);
  std::ofstream clear("/proc/self/clear_refs");
  if (clear) clear << "5";
}

}  // namespace qfarm::bench
