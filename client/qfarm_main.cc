// qfarm: the command line client. See `qfarm help`.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client/cli.h"

int main(int argc, char** argv) {
  const char* env = std::getenv("QFARM_COORDINATOR");
  const std::string coordinator =
      env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  std::ios::sync_with_stdio(false);
  return qfarm::client::RunCli(std::vector<std::string>(argv + 1, argv + argc),
                               coordinator,
                               {&std::cin, &std::cout, &std::cerr});
}
