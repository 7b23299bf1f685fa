// Items waiting for a deadline on an Asio event loop: a min-heap by
// deadline served by one steady_timer, so a sleeping task costs a heap
// entry, not a thread, a timer or a coroutine. Items with equal deadlines
// come out in the order they went in.
//
//   SleepHeap<Job> sleeping(io, [&] {
//     sleeping.TakeDue(std::chrono::steady_clock::now(),
//                      [](Job job) { Finish(std::move(job)); });
//   });
//   sleeping.Add(std::chrono::steady_clock::now() + 100ms, job);
//
// Not thread-safe: the loop's thread only (constructing and destroying
// aside).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <system_error>
#include <utility>
#include <vector>

#include "asio/io_context.hpp"
#include "asio/steady_timer.hpp"

namespace qfarm::executors {

template <typename T>
class SleepHeap {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  // `on_timer` runs on the loop once the earliest deadline has passed.
  SleepHeap(asio::io_context& io, std::function<void()> on_timer)
      : timer_(io), on_timer_(std::move(on_timer)) {}

  SleepHeap(const SleepHeap&) = delete;
  SleepHeap& operator=(const SleepHeap&) = delete;

  bool empty() const { return heap_.empty(); }

  // Arms the timer when `deadline` is the earliest.
  void Add(Deadline deadline, T item) {
    heap_.push_back({deadline, next_seq_++, std::move(item)});
    std::push_heap(heap_.begin(), heap_.end(), Later());
    if (deadline < armed_for_) Arm();
  }

  // Removes the items due at `now`, earliest first, passing each to
  // `take(T&&)`; then arms the timer for the next one. `take` must not
  // touch the heap.
  template <typename Take>
  void TakeDue(Deadline now, Take take) {
    while (!heap_.empty() && heap_.front().deadline <= now) {
      std::pop_heap(heap_.begin(), heap_.end(), Later());
      Entry entry = std::move(heap_.back());
      heap_.pop_back();
      take(std::move(entry.item));
    }
    Arm();
  }

  // Removes every item `match(const T&)` selects, passing each to
  // `take(T&&)`; then re-arms the timer. `take` must not touch the heap.
  template <typename Match, typename Take>
  void TakeIf(Match match, Take take) {
    const auto first_kept = std::partition(
        heap_.begin(), heap_.end(),
        [&match](const Entry& entry) { return match(entry.item); });
    if (first_kept == heap_.begin()) return;
    for (auto it = heap_.begin(); it != first_kept; ++it) {
      take(std::move(it->item));
    }
    heap_.erase(heap_.begin(), first_kept);
    std::make_heap(heap_.begin(), heap_.end(), Later());
    Arm();
  }

  // Stops the timer; the items stay.
  void Stop() {
    armed_for_ = Deadline::max();
    timer_.cancel();
  }

 private:
  struct Entry {
    Deadline deadline;
    // Order among equal deadlines.
    uint64_t seq = 0;
    T item;
  };
  // Orders the min-heap: earliest deadline first.
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.deadline != b.deadline ? a.deadline > b.deadline : a.seq > b.seq;
    }
  };

  // Arms the timer for the earliest item, or disarms it when there is none.
  void Arm() {
    if (heap_.empty()) {
      if (armed_for_ != Deadline::max()) Stop();
      return;
    }
    const Deadline earliest = heap_.front().deadline;
    if (earliest == armed_for_) return;
    armed_for_ = earliest;
    // Re-arming cancels the wait in progress, whose handler sees
    // operation_aborted and leaves.
    timer_.expires_at(earliest);
    timer_.async_wait([this](const std::error_code& error) {
      if (error) return;
      armed_for_ = Deadline::max();
      on_timer_();
    });
  }

  asio::steady_timer timer_;
  const std::function<void()> on_timer_;
  // A min-heap by Later.
  std::vector<Entry> heap_;
  uint64_t next_seq_ = 0;
  // When timer_ fires; max() when it is not armed.
  Deadline armed_for_ = Deadline::max();
};

}  // namespace qfarm::executors
