// The gRPC face of the daemon: a thin adapter from stronghold.v1.Stronghold
// to JobManager. The one place where absl::Status becomes a grpc::Status.
// Every call is made by a principal (server/auth/caller_identity.h; a caller
// that cannot be identified is refused UNAUTHENTICATED), and every call that
// acts on a job asks JobManager::Authorize first (docs/security.md).
#ifndef STRONGHOLD_SERVER_SERVICE_H_
#define STRONGHOLD_SERVER_SERVICE_H_

#include "absl/status/status.h"
#include "server/auth/caller_identity.h"
#include "server/job_manager.h"
#include "stronghold/v1/stronghold.grpc.pb.h"

namespace stronghold::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

// WatchJob and GetNode run on gRPC's callback API: a watch stream holds no
// thread while it waits (server/watch_reactor.h), and GetNode answers even
// when every thread of the synchronous methods is busy (--grpc_max_threads).
using StrongholdServiceBase =
    stronghold::v1::Stronghold::WithCallbackMethod_WatchJob<
        stronghold::v1::Stronghold::WithCallbackMethod_GetNode<
            stronghold::v1::Stronghold::Service>>;

class StrongholdService final : public StrongholdServiceBase {
 public:
  // Neither is owned; both outlive the service.
  StrongholdService(JobManager* jobs, const CallerIdentity* identity)
      : jobs_(jobs), identity_(identity) {}

  grpc::Status SubmitJob(grpc::ServerContext*,
                         const stronghold::v1::SubmitJobRequest*,
                         stronghold::v1::Job*) override;
  grpc::Status GetJob(grpc::ServerContext*,
                      const stronghold::v1::GetJobRequest*,
                      stronghold::v1::Job*) override;
  grpc::Status ListJobs(grpc::ServerContext*,
                        const stronghold::v1::ListJobsRequest*,
                        stronghold::v1::ListJobsResponse*) override;
  grpc::Status CancelJob(grpc::ServerContext*,
                         const stronghold::v1::CancelJobRequest*,
                         stronghold::v1::Job*) override;
  grpc::Status DeleteJob(grpc::ServerContext*,
                         const stronghold::v1::DeleteJobRequest*,
                         google::protobuf::Empty*) override;
  grpc::ServerWriteReactor<stronghold::v1::JobEvent>* WatchJob(
      grpc::CallbackServerContext*,
      const stronghold::v1::WatchJobRequest*) override;
  grpc::Status PlanJob(grpc::ServerContext*,
                       const stronghold::v1::PlanJobRequest*,
                       stronghold::v1::MemoryPlan*) override;
  grpc::Status DownloadCheckpoint(
      grpc::ServerContext*, const stronghold::v1::DownloadCheckpointRequest*,
      grpc::ServerWriter<stronghold::v1::CheckpointChunk>*) override;
  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext*,
                                    const stronghold::v1::GetNodeRequest*,
                                    stronghold::v1::Node*) override;
  grpc::Status GetJobTrace(grpc::ServerContext*,
                           const stronghold::v1::GetJobTraceRequest*,
                           stronghold::v1::JobTrace*) override;

 private:
  // The principal of the call, or UNAUTHENTICATED.
  absl::StatusOr<Principal> Caller(
      const grpc::ServerContextBase* context) const;
  // OK when the caller may do `action` to job `name`.
  absl::Status Permit(const grpc::ServerContextBase* context,
                      const std::string& name, JobAction action) const;

  JobManager* const jobs_;
  const CallerIdentity* const identity_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_SERVICE_H_
