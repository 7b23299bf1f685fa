// qfarm: the command line client. See `qfarm help`.
//
// `qfarm bench` execs qfarm-bench from the same directory, so this binary
// holds neither the benchmark nor the HTTP test server.
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
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
  return qfarm::client::RunCliMain(
      std::vector<std::string>(argv + 1, argv + argc), ExecBench);
}
