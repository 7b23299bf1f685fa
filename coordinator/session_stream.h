// The Session call (proto/qfarm/v1/farm.proto): one bidirectional stream
// on which a client runs many jobs. Each job is accepted as SubmitJob's are
// (FarmService::AcceptJob()); responses carry the client's tag, the job id
// once durable, its results as they become readable, and its end.
//
// Bounded when the client stops reading: a session stops reading requests
// while kMaxQueuedRefusals refusals wait to be sent, and reads again as
// they go out. The client's writes are then held back by HTTP/2 flow
// control, and no response is lost: a slow reader is slowed down, not
// failed. (Accepted jobs queue no messages: each job's next response is
// built from the job table when the stream can take it; their number is
// bounded by --max-jobs-per-client.)
#pragma once

#include <cstddef>
#include <string>

#include "coordinator/farm_service.h"
#include "qfarm/v1/farm.grpc.pb.h"

namespace qfarm::coordinator {

// Results per WatchJob or Session message.
inline constexpr size_t kResultsPerMessage = 4096;
// Refusals one Session queues before it stops reading requests.
inline constexpr size_t kMaxQueuedRefusals = 64;

using SessionReactor =
    grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse>;

// Starts the call of `caller` on `service`, which must
// outlive it. The reactor deletes itself when gRPC is done with it.
SessionReactor* StartSession(FarmService* service, Caller caller);

}  // namespace qfarm::coordinator
