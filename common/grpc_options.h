// gRPC settings qfarm uses on every server and channel, in one place so
// both sides agree (keepalive mismatches end in GOAWAY "too_many_pings").
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace qfarm {

// Largest message on any hop: a job of a million small tasks fits.
inline constexpr int kMaxMessageBytes = 64 << 20;

// Applies message limits and keepalive enforcement to a server.
void ConfigureServerBuilder(grpc::ServerBuilder& builder);

// Channel arguments: message limits and keepalive pings (every 10 s, also
// without calls in flight) that the server accepts.
grpc::ChannelArguments DefaultChannelArguments();

// A plaintext channel to HOST:PORT with the default arguments.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);

// A channel with the given credentials and the default arguments.
std::shared_ptr<grpc::Channel> MakeChannel(
    const std::string& address,
    std::shared_ptr<grpc::ChannelCredentials> credentials);

// TLS material, as PEM file paths.
struct TlsFiles {
  // This side's certificate chain and private key.
  std::string cert;
  std::string key;
  // CA bundle. On a server: client certificates are required and checked
  // against it (mutual TLS). On a client: the server is checked against it.
  std::string ca;
};

// Plaintext when no file is given; TLS with cert+key (both needed); mutual
// TLS when ca is given too. INVALID_ARGUMENT for an incomplete set, NOT_FOUND
// for a file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files);

// Plaintext when no file is given; TLS checking the server against `ca`
// (required for TLS); cert+key add a client certificate for mutual TLS.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files);

}  // namespace qfarm
