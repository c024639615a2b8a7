// The daemon's limit flags (docs/security.md#limits: what one principal,
// and everyone, may hold) and the gRPC server's resource flags (threads,
// message size, keepalive), and how they apply. server/main.cc has the
// other flags.
#ifndef STRONGHOLD_SERVER_LIMIT_FLAGS_H_
#define STRONGHOLD_SERVER_LIMIT_FLAGS_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "server/job_manager.h"

namespace stronghold::server {

// The limit flags as JobManagerOptions; checkpoint quotas given as
// percentages are of the file system holding `state_dir`. INVALID_ARGUMENT
// naming the flag for a bad value.
absl::Status ApplyLimitFlags(const std::string& state_dir,
                             JobManagerOptions& options);

// Threads, message sizes and keepalive of the gRPC server. Keepalive pings
// find clients that vanished without closing their connection (a crashed
// host); clients may ping every 10 s without being sent GOAWAY.
absl::Status ApplyGrpcFlags(grpc::ServerBuilder& builder);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_LIMIT_FLAGS_H_
