// The text of an errno value, as strerror() gives it, but thread-safe
// (strerror() may return a buffer another thread's call overwrites).
//
//   return absl::InternalError(absl::StrCat("pipe: ", ErrnoText(errno)));
#pragma once

#include <string>

namespace qfarm {

std::string ErrnoText(int err);

}  // namespace qfarm
