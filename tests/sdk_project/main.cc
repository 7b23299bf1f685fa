// A worker of one kind of its own: `shout:TEXT` -> TEXT in capitals, "!".
#include <cctype>
#include <string>

#include "qfarm/worker.h"

int main(int argc, char** argv) {
  qfarm::Kinds kinds = qfarm::Kinds::BuiltIn();
  kinds.AddBlocking(
      "shout", [](const qfarm::TaskInput& in) -> absl::StatusOr<std::string> {
        std::string out(in.text());
        for (char& c : out) c = static_cast<char>(std::toupper(c));
        return out + "!";
      });
  return qfarm::RunWorkerMain(argc, argv, kinds);
}
