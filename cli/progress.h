// The progress line `qfarm map` and `qfarm watch` keep on a terminal's
// stderr while a job runs:
//
//   [job 12] 1,234/10,000  ok 1,200  failed 34  running 96  812/s  eta 11s
//
// redrawn in place ("\r", then the line, then erase-to-end-of-line) at most
// 10 times a second by a thread of its own, and erased by Stop(). The
// result callback only counts (Add(): a few relaxed atomic increments), so
// drawing never slows results.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::client {

// "1,234,567".
std::string GroupThousands(uint64_t n);

// "0.4s" under 10 s, "11s", "2m03s", "1h05m", "3d04h".
std::string ShortDuration(absl::Duration d);

struct ProgressCounts {
  uint64_t total = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t timed_out = 0;
  uint64_t cancelled = 0;
  // Unknown when empty.
  std::optional<uint64_t> running;
  uint64_t done() const { return ok + failed + timed_out + cancelled; }
};

// "[job 12] 1,234/10,000  ok 1,200  failed 34  running 96  812/s  eta 11s":
// `label`, then done/total and the counts (timed out and cancelled only
// when not 0, running when known), the rate, and the time left at that
// rate (left out while the rate is 0 or unknown).
std::string FormatProgress(absl::string_view label,
                           const ProgressCounts& counts, double per_second);

class ProgressLine {
 public:
  // Tasks running now, given the counts so far; asked at most once a
  // second, on the drawing thread. It should answer within about a second
  // (Stop() waits for it). Empty when unknown.
  using RunningSource =
      std::function<std::optional<uint64_t>(const ProgressCounts&)>;

  struct Options {
    // "[job 12]".
    std::string label;
    uint64_t total = 0;
    // May be null: no running count shown.
    RunningSource running;
    // Results that were done before the line started (a watch replays
    // them first): the rate leaves them out.
    uint64_t done_before = 0;
    // The terminal's width: a longer line is cut to it, since a line that
    // wraps cannot be redrawn in place. 0: no limit.
    size_t columns = 0;
  };

  // Starts drawing on `out` (which only this object writes to until
  // Stop(), but for WithLineErased()). Stop()s when destroyed.
  ProgressLine(std::ostream* out, Options options);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // Counts one result. Thread-safe and cheap.
  void Add(v1::TaskState state);
  // Runs `write` with the line erased and no redraw under way: for output
  // to the same terminal (results on stdout), which must not land on the
  // line. The next redraw brings it back.
  template <typename F>
  void WithLineErased(F write) {
    absl::MutexLock lock(&draw_mu_);
    EraseLocked();
    write();
  }
  // Stops drawing and erases the line; waits for a RunningSource call
  // under way. Idempotent.
  void Stop();

  ProgressCounts Counts() const;

 private:
  void Loop();
  void EraseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(draw_mu_);

  std::ostream* const out_;
  const Options options_;
  std::atomic<uint64_t> ok_{0}, failed_{0}, timed_out_{0}, cancelled_{0};
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Held while writing to `out_`.
  absl::Mutex draw_mu_;
  bool drawn_ ABSL_GUARDED_BY(draw_mu_) = false;
  std::thread thread_;
};

}  // namespace qfarm::client
