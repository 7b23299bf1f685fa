// Reading the Prometheus endpoints of the real binaries from tests.
//
//   absl::StatusOr<std::string> text = Scrape("127.0.0.1:9090");
//   double running = Sample(*text, "qfarm_worker_in_flight{worker=\"w1\","
//                                  "mode=\"thread\"}");
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace qfarm::testing {

// GET http://ADDRESS/metrics (10 s limit); UNAVAILABLE naming curl's error.
absl::StatusOr<std::string> Scrape(const std::string& address);

// The value of the sample whose line starts with `series` (name and
// labels, exactly as exposed), or -1 when there is none.
double Sample(const std::string& text, const std::string& series);

// "PREFIX HOST:PORT" -> "HOST:PORT"; empty when `line` does not start with
// `prefix` (the binaries print "qfarm-worker metrics on HOST:PORT").
std::string AddressAfter(const std::string& line, const std::string& prefix);

}  // namespace qfarm::testing
