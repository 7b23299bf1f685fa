// The scheduler's journal gate: decides when recorded results may be read.
// Each change that records results takes a ticket and appends them to the
// journal under it; the results become readable once that ticket and every
// earlier one are durable, so readers see results in the order they were
// recorded and never one a crash could lose. After a failed append nothing
// later becomes readable: the gate holds the error for readers.
//
// Part of the Scheduler (coordinator/scheduler.h), under its mutex:
// thread-compatible.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "coordinator/ids.h"

namespace qfarm::coordinator {

class ResultGate {
 public:
  // A ticket for a change that recorded results; increasing from 1.
  uint64_t Issue() { return next_ticket_++; }
  // The jobs whose results `ticket` carries, readable once it is released.
  void Hold(uint64_t ticket, std::vector<JobId> jobs);

  // Ticket `ticket` is durable. Returns the jobs whose results became
  // readable (each once), in ticket order; `released` is then the ticket up
  // to which all are. Nothing when an earlier ticket is not durable yet.
  std::vector<JobId> Durable(uint64_t ticket);
  // Every ticket up to this one is durable.
  uint64_t released() const { return released_; }

  // An append failed with `status`: no later ticket is ever released.
  // Returns the jobs held back, whose readers must learn of it.
  std::vector<JobId> Fail(const absl::Status& status);
  // The failure readers see (UNAVAILABLE); OK while none happened.
  const absl::Status& error() const { return error_; }

 private:
  uint64_t next_ticket_ = 1;
  uint64_t released_ = 0;
  // Durable tickets past released_ + 1.
  absl::flat_hash_set<uint64_t> durable_ahead_;
  // The jobs with results under each ticket not released yet.
  absl::flat_hash_map<uint64_t, std::vector<JobId>> held_;
  absl::Status error_;
};

}  // namespace qfarm::coordinator
