// Runs one method of `qfarm bench` on the workload and measures it into a
// Row: in this process on a local pool, through a farm of processes it
// starts (or one given with --coordinator), or as the seed's own Python
// method (bench/seed_methods.py).
//
// Execution model: each runner blocks the calling thread until its run is
// over; results are counted into `progress` as they arrive, for a progress
// line drawn by another thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/report.h"
#include "bench/stats.h"
#include "bench/workload.h"
#include "client/farm_client.h"
#include "qfarm/kinds.h"
#include "qfarm/v1/task.pb.h"

namespace qfarm::bench {

struct RunContext {
  const Workload* workload = nullptr;
  // BuildTasks(*workload, ...).
  const std::vector<v1::Task>* tasks = nullptr;
  int cores = 1;
  // --slots and --workers; 0: the workload's defaults.
  int64_t slots = 0;
  int workers = 0;
  // Where qfarm-coordinator and qfarm-worker are.
  std::string bin_dir;
  // The kinds local methods run (null: the built-in kinds), and the worker
  // binary farm methods start (empty: bin_dir's qfarm-worker): a binary of
  // the SDK offers its kinds to both.
  const Kinds* kinds = nullptr;
  std::string worker_binary;
  // Farms journal accepted jobs and results (--data-dir under log_dir)
  // instead of keeping them in memory only (--ephemeral).
  bool journal = false;
  // A directory for the children's logs.
  std::string log_dir;
  // --coordinator: farm methods use that farm (its processes cannot be
  // measured from here) instead of starting their own.
  client::ClientOptions external;
  bool use_external = false;
  // --python: the interpreter and bench/seed_methods.py.
  std::string python;
  std::string script;
  // The http workload's server, "http://127.0.0.1:PORT".
  std::string http_base;
  // Results received so far in the current run.
  std::atomic<int64_t>* progress = nullptr;
};

// Per-task times of one run, by task index, and what they come to.
// Thread-compatible: one thread records.
class TaskLog {
 public:
  // Latencies count from `submitted_us` unless Add() says otherwise.
  TaskLog(size_t tasks, int64_t submitted_us);

  void set_submitted_us(int64_t submitted_us) { submitted_us_ = submitted_us; }
  // Also keeps each result's hops (submit -> queued -> dispatched ->
  // started -> finished -> received) when it carries the coordinator's
  // timestamps; Fill() notes their medians.
  void RecordHops() { record_hops_ = true; }
  // A result received at `received_us`; submitted at `submitted_us` (0: the
  // log's). Results for an index out of range are ignored.
  void Add(const v1::TaskResult& result, int64_t received_us,
           int64_t submitted_us = 0);
  // Times given directly (Python rows).
  void AddTimes(size_t index, const Interval& ran, int64_t latency_us, bool ok);

  int64_t received() const { return received_; }
  // Fills ok, latency_p50_us, latency_p99_us and max_concurrency, and
  // notes the median hops when recorded.
  void Fill(Row* row) const;

 private:
  int64_t submitted_us_;
  std::vector<Interval> intervals_;
  std::vector<int64_t> latencies_;
  std::vector<bool> seen_;
  int64_t received_ = 0;
  int64_t ok_ = 0;
  bool record_hops_ = false;
  // By hop: to the coordinator, queued, to the worker and started, run,
  // back to the client.
  std::vector<int64_t> hops_[5];
};

Row RunLocalMethod(const Method& method, const RunContext& context);
Row RunFarmMethod(const Method& method, const RunContext& context);
Row RunPythonMethod(const Method& method, const RunContext& context);

// The coordinator's memory per queued task: starts a coordinator without
// workers, submits the workload's tasks as one job, and measures its RSS
// growth (VmRSS after the submit minus before) per queued task.
Row RunQueueMemory(const RunContext& context);

// CPU seconds of one cpu task of `units` on this thread (the fastest of a
// few runs), for the ideal of the cpu and mixed workloads.
double MeasureCpuTaskSeconds(int64_t units);

// The slot count and the label a method runs with, after defaults.
struct Sizing {
  int workers = 0;    // farm: worker processes
  int64_t slots = 0;  // per executor (the pool, or each worker)
  int64_t total_slots = 0;
  std::string label;
};
Sizing SizeMethod(const Method& method, const RunContext& context);

}  // namespace qfarm::bench
