// The flags that qfarm, qfarm-worker and `qfarm bench` share, defined once
// so that the three can live in one binary (a worker built with the SDK,
// qfarm/worker.h, is all three). Each command line lists the ones it takes,
// with help of its own (qfarm::Flag(FLAGS_x, "help")), and reads them after
// parsing. Defaults: empty strings, --mode=thread, --slots=0,
// --output=text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/strings/string_view.h"
#include "common/flags.h"

ABSL_DECLARE_FLAG(std::string, coordinator);
ABSL_DECLARE_FLAG(std::string, mode);
ABSL_DECLARE_FLAG(int64_t, slots);
ABSL_DECLARE_FLAG(std::string, output);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, token_file);

namespace qfarm {

// --coordinator's value when not given: $QFARM_COORDINATOR, then
// 127.0.0.1:50051.
std::string DefaultCoordinator();

// --coordinator with its help.
FlagSpec CoordinatorFlag();

// --tls-ca, --tls-cert, --tls-key and --token-file with their help, for a
// command line that connects to the coordinator as `role` ("client" or
// "worker": whose token the file holds).
std::vector<FlagSpec> ConnectionFlags(absl::string_view role);

}  // namespace qfarm
