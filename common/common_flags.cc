#include "common/common_flags.h"

#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

// The help each command line shows is its own; this is the fallback.
ABSL_FLAG(std::string, coordinator, "", "HOST:PORT of the coordinator");
ABSL_FLAG(std::string, mode, "thread", "serial, thread, async or auto");
ABSL_FLAG(int64_t, slots, 0, "tasks at once (0: the mode's default)");
ABSL_FLAG(std::string, output, "text", "output format");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA bundle");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, token_file, "", "file holding the token");

namespace qfarm {

std::string DefaultCoordinator() {
  const char* env = std::getenv("QFARM_COORDINATOR");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
}

FlagSpec CoordinatorFlag() {
  return Flag(FLAGS_coordinator,
              "HOST:PORT of the coordinator; defaults to $QFARM_COORDINATOR, "
              "then 127.0.0.1:50051");
}

std::vector<FlagSpec> ConnectionFlags(absl::string_view role) {
  return {
      Flag(FLAGS_tls_ca,
           "PEM CA bundle: connect with TLS, checking the coordinator's "
           "certificate against it"),
      Flag(FLAGS_tls_cert,
           "PEM client certificate for mutual TLS (with --tls-key)"),
      Flag(FLAGS_tls_key, "PEM private key of --tls-cert"),
      Flag(FLAGS_token_file, absl::StrCat("file holding the ", role,
                                          " token the coordinator expects"))};
}

}  // namespace qfarm
