// qfarm's worker SDK: a worker of your own task kinds, in one call.
//
//   #include "qfarm/worker.h"
//
//   int main(int argc, char** argv) {
//     qfarm::Kinds kinds = qfarm::Kinds::BuiltIn();  // or qfarm::Kinds()
//     kinds.AddBlocking("reverse", [](const qfarm::TaskInput& in)
//                                      -> absl::StatusOr<std::string> {
//       return std::string(in.text().rbegin(), in.text().rend());
//     });
//     return qfarm::RunWorkerMain(argc, argv, kinds);
//   }
//
// Link the CMake target qfarm::sdk (find_package(qfarm)). How kinds are
// registered, what a handler receives and what its answer comes to:
// qfarm/kinds.h.
#pragma once

#include "qfarm/kinds.h"  // IWYU pragma: export

namespace qfarm {

// Runs the program: a qfarm-worker offering `kinds`, with every flag of
// qfarm-worker (--coordinator, --mode, --slots, --id, --drain-grace,
// --tls-ca/--tls-cert/--tls-key, --token-file, --metrics-listen,
// --health-listen, --unreachable-grace; see --help), heartbeats, credits,
// reconnects and a drain on SIGTERM.
//
// Given a command word first, it is the qfarm command line instead, with
// `kinds` in its local pool: `PROGRAM map --local reverse:hello` runs them
// in this process, `PROGRAM map reverse:hello` on a farm, and
// `PROGRAM bench --workload=custom --spec=reverse:hello` compares them
// every way (farm methods start PROGRAM as their workers; qfarm-coordinator
// comes from $QFARM_BIN_DIR, else from beside PROGRAM).
//
// Call first thing in main(), before any thread starts. Returns the exit
// code: 0 after a drain, 2 for a bad command line or a bad kind (a name
// Kinds refused: its status()), or the command's.
int RunWorkerMain(int argc, char** argv, const Kinds& kinds);

}  // namespace qfarm
