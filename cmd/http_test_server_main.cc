// qfarm-http-test-server: the local HTTP test server (testing/
// http_test_server.h) as a binary, for benchmarks and shell scripts. Prints
// "listening on HOST:PORT" as its first line on stdout, with the real port
// when 0 was asked; stops on SIGINT or SIGTERM and exits 0.
#include <iostream>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "common/flags.h"
#include "common/signals.h"
#include "testing/http_test_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "IP:PORT to serve on; port 0 picks a free one");

namespace {

constexpr char kUsage[] =
    "usage: qfarm-http-test-server [--listen=HOST:PORT]\n"
    "\n"
    "Serves /delay/<ms>, /status/<code>, /bytes/<n>, /close and /hang over\n"
    "HTTP/1.1 for tests and benchmarks of http tasks. Prints\n"
    "\"listening on HOST:PORT\" first; stops on SIGINT or SIGTERM.";

// Splits "HOST:PORT" or "[V6HOST]:PORT".
bool SplitHostPort(absl::string_view text, std::string* host, int* port) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) return false;
  absl::string_view h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  int p = 0;
  if (h.empty() || !absl::SimpleAtoi(text.substr(colon + 1), &p) || p < 0 ||
      p > 65535) {
    return false;
  }
  *host = std::string(h);
  *port = p;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  qfarm::BlockTerminationSignals();
  const qfarm::CommandLine flags(kUsage, {qfarm::Flag(FLAGS_listen)});
  if (std::optional<int> exit =
          flags.ParseFlagsOnly(argc, argv, "qfarm-http-test-server")) {
    return *exit;
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  qfarm::testing::HttpTestServerOptions options;
  if (!SplitHostPort(listen, &options.host, &options.port)) {
    std::cerr << "qfarm-http-test-server: --listen=" << listen
              << ": expected IP:PORT\n";
    return 2;
  }
  auto server = qfarm::testing::HttpTestServer::Start(options);
  if (!server.ok()) {
    std::cerr << "qfarm-http-test-server: " << server.status().message()
              << "\n";
    return 1;
  }
  std::cout << "listening on " << (*server)->address() << std::endl;
  qfarm::WaitForTerminationSignal();
  (*server)->Stop();
  const qfarm::testing::HttpTestServerStats stats = (*server)->stats();
  std::cerr << "qfarm-http-test-server: stopped after " << stats.requests
            << " requests on " << stats.connections_accepted
            << " connections (at most " << stats.max_active_requests
            << " requests at once)\n";
  return 0;
}
