// How `qfarm jobs` shows the coordinator's jobs: a table, or one JSON
// object a line.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "qfarm/v1/farm.pb.h"

namespace qfarm::client {

// "running", "done", "failed", "cancelled"; INVALID_ARGUMENT naming them
// for anything else.
absl::StatusOr<v1::JobState> ParseJobState(absl::string_view name);
absl::string_view JobStateName(v1::JobState state);

// Its tasks with a final result: ok, failed, timed out or cancelled.
uint64_t JobFinished(const v1::JobInfo& job);

// A job's time so far: from its creation to its end, or to `as_of_us`
// (the coordinator's clock) while it runs.
absl::Duration JobWallTime(const v1::JobInfo& job, int64_t as_of_us);
// Its finished tasks per second of JobWallTime(); 0 for no time yet.
double JobTasksPerSecond(const v1::JobInfo& job, int64_t as_of_us);

// The header and one row per job, aligned:
// "JOB  STATE  TASKS  OK  FAILED  T/O  CANCELLED  QUEUED  RUNNING  TASKS/S
//  WALL  AGE  CLIENT", with times as ShortDuration()s and "-" for no
// client.
std::string JobTableHeader();
std::string FormatJobRow(const v1::JobInfo& job, int64_t as_of_us);

// One JSON object, no newline: job_id, state, client, total, queued,
// running, ok, failed, timed_out, cancelled, created_us, finished_us (0
// while running), wall_s, tasks_per_s and age_s.
std::string FormatJobJson(const v1::JobInfo& job, int64_t as_of_us);

}  // namespace qfarm::client
