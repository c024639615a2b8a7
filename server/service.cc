#include "server/service.h"

#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/file_util.h"
#include "core/util/sha256.h"
#include "server/proto_convert.h"
#include "server/watch_reactor.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

namespace {

template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = std::move(*result);
  return grpc::Status::OK;
}

// What leaves the daemon never carries a job key (server/proto_convert.h).
absl::StatusOr<v1::Job> Redacted(absl::StatusOr<v1::Job> job) {
  if (job.ok()) RedactSecrets(&*job);
  return job;
}

absl::StatusOr<v1::ListJobsResponse> Redacted(
    absl::StatusOr<v1::ListJobsResponse> list) {
  if (list.ok()) {
    for (v1::Job& job : *list->mutable_jobs()) RedactSecrets(&job);
  }
  return list;
}

constexpr int kDefaultChunk = 1 << 20;
constexpr int kMaxChunk = 4 << 20;

}  // namespace

absl::StatusOr<Principal> StrongholdService::Caller(
    const grpc::ServerContextBase* context) const {
  return identity_->Identify(*context);
}

absl::Status StrongholdService::Permit(const grpc::ServerContextBase* context,
                                       const std::string& name,
                                       JobAction action) const {
  absl::StatusOr<Principal> caller = Caller(context);
  if (!caller.ok()) return caller.status();
  return jobs_->Authorize(name, *caller, action);
}

grpc::Status StrongholdService::SubmitJob(grpc::ServerContext* ctx,
                                          const v1::SubmitJobRequest* req,
                                          v1::Job* out) {
  absl::StatusOr<Principal> caller = Caller(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(Redacted(jobs_->Submit(req->spec(), *caller)), out);
}

grpc::Status StrongholdService::GetJob(grpc::ServerContext* ctx,
                                       const v1::GetJobRequest* req,
                                       v1::Job* out) {
  if (absl::Status s = Caller(ctx).status(); !s.ok()) return ToGrpcStatus(s);
  return Reply(Redacted(jobs_->Get(req->name())), out);
}

grpc::Status StrongholdService::ListJobs(grpc::ServerContext* ctx,
                                         const v1::ListJobsRequest* req,
                                         v1::ListJobsResponse* out) {
  if (absl::Status s = Caller(ctx).status(); !s.ok()) return ToGrpcStatus(s);
  return Reply(Redacted(jobs_->List(req->page_size(), req->page_token())), out);
}

grpc::Status StrongholdService::CancelJob(grpc::ServerContext* ctx,
                                          const v1::CancelJobRequest* req,
                                          v1::Job* out) {
  if (absl::Status s = Permit(ctx, req->name(), JobAction::kCancel); !s.ok()) {
    return ToGrpcStatus(s);
  }
  return Reply(Redacted(jobs_->Cancel(req->name(), req->checkpoint())), out);
}

grpc::Status StrongholdService::DeleteJob(grpc::ServerContext* ctx,
                                          const v1::DeleteJobRequest* req,
                                          google::protobuf::Empty*) {
  if (absl::Status s = Permit(ctx, req->name(), JobAction::kDelete); !s.ok()) {
    return ToGrpcStatus(s);
  }
  return ToGrpcStatus(jobs_->Delete(req->name()));
}

grpc::ServerWriteReactor<v1::JobEvent>* StrongholdService::WatchJob(
    grpc::CallbackServerContext* ctx, const v1::WatchJobRequest* req) {
  absl::StatusOr<Principal> caller = Caller(ctx);
  if (!caller.ok()) return WatchReactor::Refuse(caller.status());
  return WatchReactor::Start(jobs_, *req, caller->name);
}

grpc::Status StrongholdService::PlanJob(grpc::ServerContext* ctx,
                                        const v1::PlanJobRequest* req,
                                        v1::MemoryPlan* out) {
  if (absl::Status s = Caller(ctx).status(); !s.ok()) return ToGrpcStatus(s);
  return Reply(jobs_->Plan(*req), out);
}

grpc::Status StrongholdService::DownloadCheckpoint(
    grpc::ServerContext* ctx, const v1::DownloadCheckpointRequest* req,
    grpc::ServerWriter<v1::CheckpointChunk>* writer) {
  if (absl::Status s = Permit(ctx, req->name(), JobAction::kDownloadCheckpoint);
      !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (req->offset() < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("offset: must be >= 0"));
  }
  if (req->chunk_bytes() < 0 || req->chunk_bytes() > kMaxChunk) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("chunk_bytes: must be in [0, ", kMaxChunk, "]")));
  }
  absl::StatusOr<std::string> path = jobs_->CheckpointPath(
      req->name(), req->checkpoint(), req->file(), req->format());
  if (!path.ok()) return ToGrpcStatus(path.status());
  absl::StatusOr<int64_t> size = core::FileSize(*path);
  if (!size.ok()) return ToGrpcStatus(size.status());
  if (req->offset() > *size) {
    return ToGrpcStatus(absl::OutOfRangeError(
        absl::StrCat("offset: ", req->offset(),
                     " is past the end of the file (", *size, " bytes)")));
  }
  const int chunk = req->chunk_bytes() > 0 ? req->chunk_bytes() : kDefaultChunk;
  const std::string file = path->substr(path->rfind('/') + 1);

  // The digest covers the whole file, so a download continued at `offset`
  // still ends with the digest of every byte.
  core::Sha256 digest;
  int64_t offset = 0;
  while (true) {
    if (ctx->IsCancelled())
      return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    const int64_t want = std::min<int64_t>(chunk, *size - offset);
    absl::StatusOr<std::string> data = core::ReadFileRange(*path, offset, want);
    if (!data.ok()) return ToGrpcStatus(data.status());
    if (static_cast<int64_t>(data->size()) != want) {
      return ToGrpcStatus(
          absl::DataLossError(absl::StrCat(*path, " changed while reading")));
    }
    digest.Update(data->data(), data->size());
    const int64_t next = offset + want;
    const bool last = next >= *size;
    if (next > req->offset() || last) {
      v1::CheckpointChunk out;
      out.set_file(file);
      out.set_total_bytes(*size);
      const int64_t skip = std::max<int64_t>(0, req->offset() - offset);
      out.set_offset(offset + skip);
      out.set_data(data->substr(static_cast<size_t>(skip)));
      if (last) out.set_sha256(digest.HexDigest());
      if (!writer->Write(out))
        return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    }
    if (last) return grpc::Status::OK;
    offset = next;
  }
}

grpc::ServerUnaryReactor* StrongholdService::GetNode(
    grpc::CallbackServerContext* ctx, const v1::GetNodeRequest* req,
    v1::Node* out) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::Status s = Caller(ctx).status(); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  if (req->remeasure_profile()) {
    if (absl::Status s = jobs_->RemeasureProfile(); !s.ok()) {
      reactor->Finish(ToGrpcStatus(s));
      return reactor;
    }
  }
  *out = jobs_->Node();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::Status StrongholdService::GetJobTrace(grpc::ServerContext* ctx,
                                            const v1::GetJobTraceRequest* req,
                                            v1::JobTrace* out) {
  if (absl::Status s = Permit(ctx, req->name(), JobAction::kReadTrace);
      !s.ok()) {
    return ToGrpcStatus(s);
  }
  return Reply(jobs_->Trace(req->name()), out);
}

}  // namespace stronghold::server
