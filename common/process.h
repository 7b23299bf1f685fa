// Facts about the running process.
#pragma once

#include <string>

namespace qfarm {

// The running binary (/proc/self/exe); empty if it cannot be read.
std::string SelfPath();

// The directory of the running binary, where qfarm's other binaries are;
// "." if it cannot be read.
std::string SelfDirectory();

}  // namespace qfarm
