// A thin client for the strongholdd API: one method per RPC, gRPC statuses
// turned into absl::Status (same codes and messages) in exactly one place, so
// the commands above it never see gRPC types.
#ifndef STRONGHOLD_CLIENT_DAEMON_CLIENT_H_
#define STRONGHOLD_CLIENT_DAEMON_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stronghold/v1/stronghold.grpc.pb.h"

namespace stronghold::client {

// How the channel to a TCP address is secured (client/channel_security.h
// builds it from the flags). A unix socket is always plain: the daemon
// knows its peer from the kernel.
struct ChannelSecurity {
  bool tls = false;
  // PEM CA certificates the daemon's certificate must chain to; empty = the
  // system's roots.
  std::string root_certs_pem;
  // The client certificate (PEM chain) and its private key; empty = none.
  std::string cert_chain_pem;
  std::string private_key_pem;
  // Sent as "authorization: Bearer <token>" with every call; needs `tls`.
  std::string bearer_token;
};

struct DaemonClientOptions {
  // gRPC target, e.g. "unix:/run/stronghold/strongholdd.sock" or
  // "localhost:7070" (see daemon_address.h).
  std::string address;
  // Deadline of each unary RPC; absl::InfiniteDuration() (or zero) for none.
  // Streams (WatchJob, DownloadCheckpoint) have no deadline: they last as long
  // as the job or the file.
  absl::Duration timeout = absl::Seconds(30);
  ChannelSecurity security;
};

// Whether `status` ended a stream after the daemon had sent messages on it: the
// daemon was reached and the connection broke, rather than never answering.
bool IsInterruptedStream(const absl::Status& status);
// Marks a non-OK `status` so that IsInterruptedStream() is true.
void MarkInterruptedStream(absl::Status& status);

class DaemonClient {
 public:
  // Creates the channel; connecting happens lazily on the first call, so an
  // unreachable daemon shows up as UNAVAILABLE from that call.
  explicit DaemonClient(DaemonClientOptions options);

  const std::string& address() const { return options_.address; }

  absl::StatusOr<v1::Job> SubmitJob(const v1::JobSpec& spec);
  absl::StatusOr<v1::Job> GetJob(const std::string& name);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(
      const v1::ListJobsRequest& request);
  // With `checkpoint`, a running job writes a checkpoint first.
  absl::StatusOr<v1::Job> CancelJob(const std::string& name,
                                    bool checkpoint = false);
  // Deletes an ended job and its files.
  absl::Status DeleteJob(const std::string& name);
  absl::StatusOr<v1::MemoryPlan> PlanJob(const v1::JobSpec& spec);
  absl::StatusOr<v1::MemoryPlan> PlanJob(const v1::PlanJobRequest& request);
  // With `remeasure_profile`, the daemon measures its hardware profile again.
  absl::StatusOr<v1::Node> GetNode(bool remeasure_profile = false);
  absl::StatusOr<v1::JobTrace> GetJobTrace(const std::string& name);

  // Calls `on_event` for each event until the stream ends. If `on_event`
  // fails, the stream is cancelled and its error returned; otherwise the
  // stream's final status is returned (see IsInterruptedStream).
  absl::Status WatchJob(
      const v1::WatchJobRequest& request,
      const std::function<absl::Status(const v1::JobEvent&)>& on_event);

  // Like WatchJob, for the chunks of a checkpoint file.
  absl::Status DownloadCheckpoint(
      const v1::DownloadCheckpointRequest& request,
      const std::function<absl::Status(const v1::CheckpointChunk&)>& on_chunk);

 private:
  const DaemonClientOptions options_;
  std::unique_ptr<v1::Stronghold::Stub> stub_;
};

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_DAEMON_CLIENT_H_
