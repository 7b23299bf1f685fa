#include "cli/progress.h"

#include <cmath>
#include <ostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qfarm::client {
namespace {

// At most 10 redraws a second.
constexpr absl::Duration kRedraw = absl::Milliseconds(100);
// The rate is over about this much of the recent past.
constexpr absl::Duration kRateWindow = absl::Seconds(3);
constexpr absl::Duration kAskRunning = absl::Seconds(1);

}  // namespace

std::string GroupThousands(uint64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string ShortDuration(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  const double s = absl::ToDoubleSeconds(d);
  if (s < 9.95) return absl::StrFormat("%.1fs", s);
  const int64_t secs = absl::ToInt64Seconds(d + absl::Milliseconds(500));
  if (secs < 60) return absl::StrCat(secs, "s");
  if (secs < 3600) return absl::StrFormat("%dm%02ds", secs / 60, secs % 60);
  if (secs < 86400) {
    return absl::StrFormat("%dh%02dm", secs / 3600, secs % 3600 / 60);
  }
  return absl::StrFormat("%dd%02dh", secs / 86400, secs % 86400 / 3600);
}

std::string FormatProgress(absl::string_view label, const ProgressCounts& c,
                           double per_second) {
  std::string line = absl::StrCat(
      label, " ", GroupThousands(c.done()), "/", GroupThousands(c.total),
      "  ok ", GroupThousands(c.ok), "  failed ", GroupThousands(c.failed));
  if (c.timed_out > 0) {
    absl::StrAppend(&line, "  timed out ", GroupThousands(c.timed_out));
  }
  if (c.cancelled > 0) {
    absl::StrAppend(&line, "  cancelled ", GroupThousands(c.cancelled));
  }
  if (c.running.has_value()) {
    absl::StrAppend(&line, "  running ", GroupThousands(*c.running));
  }
  const uint64_t rate = static_cast<uint64_t>(std::llround(per_second));
  absl::StrAppend(&line, "  ", GroupThousands(rate), "/s");
  if (per_second > 0 && c.done() < c.total) {
    absl::StrAppend(&line, "  eta ",
                    ShortDuration(absl::Seconds(
                        static_cast<double>(c.total - c.done()) / per_second)));
  }
  return line;
}

ProgressLine::ProgressLine(std::ostream* out, std::string label, uint64_t total,
                           RunningSource running)
    : out_(out),
      label_(std::move(label)),
      total_(total),
      running_source_(std::move(running)) {
  thread_ = std::thread([this] { Loop(); });
}

ProgressLine::~ProgressLine() { Stop(); }

void ProgressLine::Add(v1::TaskState state) {
  switch (state) {
    case v1::TASK_STATE_OK:
      ok_.fetch_add(1, std::memory_order_relaxed);
      break;
    case v1::TASK_STATE_TIMED_OUT:
      timed_out_.fetch_add(1, std::memory_order_relaxed);
      break;
    case v1::TASK_STATE_CANCELLED:
      cancelled_.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      failed_.fetch_add(1, std::memory_order_relaxed);
  }
}

ProgressCounts ProgressLine::Counts() const {
  return {.total = total_,
          .ok = ok_.load(std::memory_order_relaxed),
          .failed = failed_.load(std::memory_order_relaxed),
          .timed_out = timed_out_.load(std::memory_order_relaxed),
          .cancelled = cancelled_.load(std::memory_order_relaxed)};
}

void ProgressLine::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ProgressLine::Loop() {
  // The rate: from a sample about kRateWindow old to the latest.
  const absl::Time began = absl::Now();
  uint64_t base_done = 0, last_done = 0;
  absl::Time base_time = began, last_time = began;
  double per_second = 0;
  std::optional<uint64_t> running;
  absl::Time running_asked = absl::InfinitePast();
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), kRedraw)) break;
    }
    const absl::Time now = absl::Now();
    ProgressCounts counts = Counts();
    if (running_source_ != nullptr && now - running_asked >= kAskRunning) {
      running_asked = now;
      running = running_source_(counts);
    }
    counts.running = running;
    const uint64_t done = counts.done();
    if (now - base_time > kRateWindow) {
      base_done = last_done;
      base_time = last_time;
    }
    last_done = done;
    last_time = now;
    const double seconds = absl::ToDoubleSeconds(now - base_time);
    if (seconds > 0.05) {
      per_second = static_cast<double>(done - base_done) / seconds;
    }
    // One write, so that nothing lands inside it.
    const std::string line = absl::StrCat(
        "\r", FormatProgress(label_, counts, per_second), "\x1b[K");
    absl::MutexLock lock(&draw_mu_);
    out_->write(line.data(), static_cast<std::streamsize>(line.size()));
    out_->flush();
    drawn_ = true;
  }
  absl::MutexLock lock(&draw_mu_);
  EraseLocked();
}

void ProgressLine::EraseLocked() {
  if (!drawn_) return;
  *out_ << "\r\x1b[K" << std::flush;
  drawn_ = false;
}

}  // namespace qfarm::client
