// qfarm-worker's command line: every flag of the worker (see --help), then
// RunWorker() offering `kinds`. Behind cmd/worker_main.cc, and behind the
// SDK's qfarm::RunWorkerMain() (qfarm/worker.h) for workers of other kinds.
//
//   return RunWorkerMain({"--mode=async", "--slots=100"},
//                        executors::BuiltInKinds(), "qfarm-worker");
#pragma once

#include <string>
#include <vector>

#include "qfarm/kinds.h"

namespace qfarm::worker {

// `args` exclude the program name. Call first thing in main(), before any
// thread starts. Returns the exit code (RunWorker()'s; 0 after --help, 2
// for a bad command line or `kinds` with an error or no kind). Parses into
// the process's Abseil flags: one call at a time per process.
int RunWorkerMain(const std::vector<std::string>& args, const Kinds& kinds,
                  const std::string& program);

// The usage text, for programs that add commands of their own.
std::string WorkerHelp(const std::string& program);

}  // namespace qfarm::worker
