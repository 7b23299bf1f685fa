// gRPC settings qfarm uses on every server and channel, in one place so
// both sides agree (keepalive mismatches end in GOAWAY "too_many_pings").
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <memory>
#include <string>

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

}  // namespace qfarm
