// qfarm-example-worker: a worker of two kinds of its own, beside the
// built-in ones. `reverse:TEXT` (blocking) answers TEXT reversed;
// `wordcount:URL` (a coroutine on the event loop) GETs URL through the loop's
// libcurl multi handle and answers the number of words in the body.
#include <sstream>
#include <string>

#include "qfarm/worker.h"

int main(int argc, char** argv) {
  qfarm::Kinds kinds = qfarm::Kinds::BuiltIn();
  kinds.AddBlocking(
      "reverse", [](const qfarm::TaskInput& in) -> absl::StatusOr<std::string> {
        return std::string(in.text().rbegin(), in.text().rend());
      });
  kinds.AddCoroutine("wordcount",
                     [](const qfarm::TaskInput& in)
                         -> asio::awaitable<absl::StatusOr<std::string>> {
                       absl::StatusOr<std::string> body =
                           co_await qfarm::HttpGet(in, std::string(in.text()));
                       if (!body.ok()) co_return body.status();
                       std::istringstream words(*body);
                       size_t count = 0;
                       for (std::string word; words >> word;) ++count;
                       co_return std::to_string(count);
                     });
  return qfarm::RunWorkerMain(argc, argv, kinds);
}
