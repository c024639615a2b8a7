#include "client/daemon_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <utility>

#include "absl/strings/cord.h"

namespace stronghold::client {
namespace {

// Marks the status of a stream that broke after delivering messages.
constexpr char kInterruptedPayload[] =
    "type.googleapis.com/stronghold.client.StreamInterrupted";

// gRPC and absl share status code numbering.
absl::Status ToAbslStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

// Makes a unary call under `timeout`. `rpc(context, response)` issues it.
template <typename Response, typename Rpc>
absl::StatusOr<Response> Unary(absl::Duration timeout, Rpc rpc) {
  grpc::ClientContext context;
  if (timeout > absl::ZeroDuration() && timeout != absl::InfiniteDuration()) {
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(timeout));
  }
  Response response;
  const grpc::Status status = rpc(&context, &response);
  if (!status.ok()) return ToAbslStatus(status);
  return response;
}

// Reads a server stream to its end, handing each message to `on_message`.
template <typename Message>
absl::Status ReadStream(
    grpc::ClientContext& context, grpc::ClientReaderInterface<Message>& reader,
    const std::function<absl::Status(const Message&)>& on_message) {
  Message message;
  absl::Status handler_status;
  bool received = false;
  while (reader.Read(&message)) {
    received = true;
    handler_status = on_message(message);
    if (!handler_status.ok()) {
      context.TryCancel();
      while (reader.Read(&message)) {
      }  // drain, as Finish() requires
      break;
    }
  }
  const grpc::Status status = reader.Finish();
  if (!handler_status.ok()) return handler_status;
  absl::Status result = ToAbslStatus(status);
  if (!result.ok() && received)
    result.SetPayload(kInterruptedPayload, absl::Cord());
  return result;
}

}  // namespace

bool IsInterruptedStream(const absl::Status& status) {
  return status.GetPayload(kInterruptedPayload).has_value();
}

void MarkInterruptedStream(absl::Status& status) {
  if (!status.ok()) status.SetPayload(kInterruptedPayload, absl::Cord());
}

namespace {

std::shared_ptr<grpc::ChannelCredentials> Credentials(
    const ChannelSecurity& security) {
  if (!security.tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = security.root_certs_pem;
  ssl.pem_cert_chain = security.cert_chain_pem;
  ssl.pem_private_key = security.private_key_pem;
  std::shared_ptr<grpc::ChannelCredentials> channel = grpc::SslCredentials(ssl);
  if (security.bearer_token.empty()) return channel;
  // gRPC's own "authorization: Bearer" call credentials; it sends them only
  // over a secure channel.
  return grpc::CompositeChannelCredentials(
      channel, grpc::AccessTokenCredentials(security.bearer_token));
}

}  // namespace

DaemonClient::DaemonClient(DaemonClientOptions options)
    : options_(std::move(options)),
      stub_(v1::Stronghold::NewStub(grpc::CreateChannel(
          options_.address, Credentials(options_.security)))) {}

absl::StatusOr<v1::Job> DaemonClient::SubmitJob(const v1::JobSpec& spec) {
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  return Unary<v1::Job>(options_.timeout, [&](auto* context, auto* job) {
    return stub_->SubmitJob(context, request, job);
  });
}

absl::StatusOr<v1::Job> DaemonClient::GetJob(const std::string& name) {
  v1::GetJobRequest request;
  request.set_name(name);
  return Unary<v1::Job>(options_.timeout, [&](auto* context, auto* job) {
    return stub_->GetJob(context, request, job);
  });
}

absl::StatusOr<v1::ListJobsResponse> DaemonClient::ListJobs(
    const v1::ListJobsRequest& request) {
  return Unary<v1::ListJobsResponse>(
      options_.timeout, [&](auto* context, auto* response) {
        return stub_->ListJobs(context, request, response);
      });
}

absl::StatusOr<v1::Job> DaemonClient::CancelJob(const std::string& name,
                                                bool checkpoint) {
  v1::CancelJobRequest request;
  request.set_name(name);
  request.set_checkpoint(checkpoint);
  return Unary<v1::Job>(options_.timeout, [&](auto* context, auto* job) {
    return stub_->CancelJob(context, request, job);
  });
}

absl::Status DaemonClient::DeleteJob(const std::string& name) {
  v1::DeleteJobRequest request;
  request.set_name(name);
  return Unary<google::protobuf::Empty>(options_.timeout,
                                        [&](auto* context, auto* empty) {
                                          return stub_->DeleteJob(
                                              context, request, empty);
                                        })
      .status();
}

absl::StatusOr<v1::MemoryPlan> DaemonClient::PlanJob(const v1::JobSpec& spec) {
  v1::PlanJobRequest request;
  *request.mutable_spec() = spec;
  return PlanJob(request);
}

absl::StatusOr<v1::MemoryPlan> DaemonClient::PlanJob(
    const v1::PlanJobRequest& request) {
  return Unary<v1::MemoryPlan>(options_.timeout,
                               [&](auto* context, auto* plan) {
                                 return stub_->PlanJob(context, request, plan);
                               });
}

absl::StatusOr<v1::Node> DaemonClient::GetNode(bool remeasure_profile) {
  v1::GetNodeRequest request;
  request.set_remeasure_profile(remeasure_profile);
  return Unary<v1::Node>(options_.timeout, [&](auto* context, auto* node) {
    return stub_->GetNode(context, request, node);
  });
}

absl::StatusOr<v1::JobTrace> DaemonClient::GetJobTrace(
    const std::string& name) {
  v1::GetJobTraceRequest request;
  request.set_name(name);
  return Unary<v1::JobTrace>(options_.timeout, [&](auto* context, auto* trace) {
    return stub_->GetJobTrace(context, request, trace);
  });
}

absl::Status DaemonClient::WatchJob(
    const v1::WatchJobRequest& request,
    const std::function<absl::Status(const v1::JobEvent&)>& on_event) {
  grpc::ClientContext context;
  auto reader = stub_->WatchJob(&context, request);
  return ReadStream(context, *reader, on_event);
}

absl::Status DaemonClient::DownloadCheckpoint(
    const v1::DownloadCheckpointRequest& request,
    const std::function<absl::Status(const v1::CheckpointChunk&)>& on_chunk) {
  grpc::ClientContext context;
  auto reader = stub_->DownloadCheckpoint(&context, request);
  return ReadStream(context, *reader, on_chunk);
}

}  // namespace stronghold::client
