#include "client/gather.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace qfarm::client {

absl::StatusOr<std::vector<v1::TaskResult>> GatherInOrder(
    size_t count,
    const std::function<absl::Status(const ResultCallback&)>& run) {
  std::vector<v1::TaskResult> results(count);
  std::vector<bool> seen(count, false);
  size_t received = 0;
  absl::Status status = run([&](v1::TaskResult&& result) {
    const size_t index = result.index();
    if (index < count && !seen[index]) {
      seen[index] = true;
      results[index] = std::move(result);
      ++received;
    }
  });
  if (!status.ok()) return status;
  if (received != count) {
    return absl::InternalError(absl::StrCat("job ended with ", received,
                                            " results for ", count, " tasks"));
  }
  return results;
}

}  // namespace qfarm::client
