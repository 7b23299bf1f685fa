#include "cli/progress.h"

#include <algorithm>
#include <cmath>
#include <deque>
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

ProgressLine::ProgressLine(std::ostream* out, Options options)
    : out_(out), options_(std::move(options)) {
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
  return {.total = options_.total,
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
  // (time, done) about every redraw over the last kRateWindow: the rate is
  // from the oldest to the newest.
  std::deque<std::pair<absl::Time, uint64_t>> samples = {
      {absl::Now(), options_.done_before}};
  std::optional<uint64_t> running;
  absl::Time running_asked = absl::InfinitePast();
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), kRedraw)) break;
    }
    const absl::Time now = absl::Now();
    ProgressCounts counts = Counts();
    if (options_.running != nullptr && now - running_asked >= kAskRunning) {
      running_asked = now;
      running = options_.running(counts);
    }
    counts.running = running;
    // A replayed backlog (done_before) does not count as progress.
    const uint64_t done = std::max(counts.done(), options_.done_before);
    samples.emplace_back(now, done);
    while (samples.size() > 2 && now - samples[1].first >= kRateWindow) {
      samples.pop_front();
    }
    const double seconds = absl::ToDoubleSeconds(now - samples.front().first);
    const double per_second =
        seconds > 0
            ? static_cast<double>(done - samples.front().second) / seconds
            : 0;
    // One write, so that nothing lands inside it.
    std::string line = FormatProgress(options_.label, counts, per_second);
    if (options_.columns > 1 && line.size() >= options_.columns) {
      line.resize(options_.columns - 1);
    }
    line = absl::StrCat("\r", line, "\x1b[K");
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
