#include "common/errno_text.h"

#include <string.h>

namespace qfarm {

std::string ErrnoText(int err) {
  char buffer[256];
  // GNU strerror_r: returns the text, in `buffer` or a static string.
  return strerror_r(err, buffer, sizeof(buffer));
}

}  // namespace qfarm
