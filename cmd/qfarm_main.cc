// qfarm: the command line client. See `qfarm help`.
//
// Ctrl-C: the first one is handed to the running command (map cancels its
// job and prints what finished; watch stops watching); a second one, or one
// during a command that does not handle it, exits at once with 130.
// `qfarm bench` execs qfarm-bench from the same directory.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "client/interrupt.h"
#include "common/errno_text.h"
#include "common/process.h"
#include "common/signals.h"

namespace {

// Replaces this process with qfarm-bench and `args`; returns only on error.
int ExecBench(const std::vector<std::string>& args,
              const qfarm::client::CliStreams& io) {
  std::string path = qfarm::SelfDirectory() + "/qfarm-bench";
  std::vector<std::string> owned = {path};
  owned.insert(owned.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : owned) argv.push_back(arg.data());
  argv.push_back(nullptr);
  io.out->flush();
  qfarm::UnblockTerminationSignals();
  execv(path.c_str(), argv.data());
  *io.err << "qfarm: cannot run " << path << ": " << qfarm::ErrnoText(errno)
          << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  qfarm::TurnOffMutexDeadlockDetection();
  qfarm::BlockTerminationSignals();
  const char* env = std::getenv("QFARM_COORDINATOR");
  const std::string coordinator =
      env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  std::ios::sync_with_stdio(false);

  qfarm::client::Interrupt interrupt;
  std::thread([&interrupt] {
    qfarm::WaitForTerminationSignal();
    if (!interrupt.Fire()) _exit(130);
    qfarm::WaitForTerminationSignal();
    _exit(130);
  }).detach();

  const int code = qfarm::client::RunCli(
      std::vector<std::string>(argv + 1, argv + argc), coordinator,
      {&std::cin, &std::cout, &std::cerr, &interrupt}, ExecBench);
  std::cout.flush();
  return code;
}
