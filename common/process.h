// Facts about the running process.
#pragma once

#include <string>

namespace qfarm {

// The directory of the running binary (/proc/self/exe), where qfarm's other
// binaries are; "." if it cannot be read.
std::string SelfDirectory();

}  // namespace qfarm
