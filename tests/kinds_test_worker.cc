// qfarm-kinds-test-worker: a worker built with the SDK whose kinds misbehave
// on purpose, for tests/kinds_test.cc.
//   throw:MSG    throws std::runtime_error(MSG)
//   big:N        returns N bytes
//   crash:PATH   aborts the process the first time (it creates PATH), then
//                returns "survived"
//   reverse:TEXT TEXT reversed
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "absl/strings/numbers.h"
#include "qfarm/worker.h"

int main(int argc, char** argv) {
  qfarm::Kinds kinds;
  kinds.AddBlocking(
      "throw", [](const qfarm::TaskInput& in) -> absl::StatusOr<std::string> {
        throw std::runtime_error(std::string(in.text()));
      });
  kinds.AddBlocking(
      "big", [](const qfarm::TaskInput& in) -> absl::StatusOr<std::string> {
        size_t n = 0;
        if (!absl::SimpleAtoi(in.text(), &n)) {
          return absl::InvalidArgumentError("big takes a byte count");
        }
        return std::string(n, 'b');
      });
  kinds.AddBlocking(
      "crash", [](const qfarm::TaskInput& in) -> absl::StatusOr<std::string> {
        const std::string path(in.text());
        const int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
        if (fd >= 0) {
          close(fd);
          _exit(134);  // As abort() would, without a core file.
        }
        return std::string("survived");
      });
  kinds.AddBlocking(
      "reverse", [](const qfarm::TaskInput& in) -> absl::StatusOr<std::string> {
        return std::string(in.text().rbegin(), in.text().rend());
      });
  return qfarm::RunWorkerMain(argc, argv, kinds);
}
