#include "server/limit_flags.h"

#include <grpcpp/resource_quota.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/util/status_macros.h"
#include "server/address.h"
#include "server/job_limits.h"

// Limits (docs/security.md#limits): what one principal, and everyone, may
// hold. Past one a call fails with RESOURCE_EXHAUSTED naming the flag.
ABSL_FLAG(int, max_queued_jobs, 256,
          "Queued jobs in total; SubmitJob past it is refused");
ABSL_FLAG(int, max_queued_jobs_per_principal, 64,
          "Queued jobs of one principal");
ABSL_FLAG(int, max_watch_streams, 1024, "Open WatchJob streams in total");
ABSL_FLAG(int, max_watch_streams_per_principal, 256,
          "Open WatchJob streams of one principal");
ABSL_FLAG(std::string, max_checkpoint_bytes_per_job, "25%",
          "Checkpoint bytes one job may keep at once: a size (512GiB) or a "
          "percentage of the state directory's file system; a job that could "
          "keep more is refused at submission");
ABSL_FLAG(
    std::string, max_checkpoint_bytes_per_principal, "50%",
    "Checkpoint bytes all jobs of one principal hold and reserve (until "
    "deleted): a size or a percentage of the state directory's file system");
ABSL_FLAG(int, max_events_per_job, 10'000,
          "Events (steps, states, notes) kept per job in memory");
ABSL_FLAG(int64_t, max_events, 100'000,
          "Events kept in memory over all jobs; past it ended jobs' events are "
          "dropped");
ABSL_FLAG(int, grpc_max_threads, 32,
          "Threads of the synchronous RPCs (a download or a waiting cancel "
          "holds one); past it gRPC refuses calls with RESOURCE_EXHAUSTED "
          "(WatchJob and GetNode use none)");
ABSL_FLAG(std::string, grpc_max_receive_message_bytes, "1MiB",
          "Largest request message");
ABSL_FLAG(absl::Duration, grpc_keepalive_time, absl::Seconds(60),
          "Ping a connection idle this long, to find clients that are gone");
ABSL_FLAG(absl::Duration, grpc_keepalive_timeout, absl::Seconds(20),
          "Close a connection whose ping is not answered within this");

namespace stronghold::server {

absl::Status ApplyLimitFlags(const std::string& state_dir,
                             JobManagerOptions& options) {
  JobLimits& limits = options.limits;
  limits.max_queued_jobs = absl::GetFlag(FLAGS_max_queued_jobs);
  limits.max_queued_jobs_per_principal =
      absl::GetFlag(FLAGS_max_queued_jobs_per_principal);
  limits.max_watch_streams = absl::GetFlag(FLAGS_max_watch_streams);
  limits.max_watch_streams_per_principal =
      absl::GetFlag(FLAGS_max_watch_streams_per_principal);
  struct statvfs fs {};
  if (statvfs(state_dir.c_str(), &fs) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--state_dir: cannot stat ", state_dir, ": ", std::strerror(errno)));
  }
  const int64_t capacity =
      static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
  ASSIGN_OR_RETURN(
      limits.max_checkpoint_bytes_per_job,
      ParseQuota("max_checkpoint_bytes_per_job",
                 absl::GetFlag(FLAGS_max_checkpoint_bytes_per_job), capacity));
  ASSIGN_OR_RETURN(
      limits.max_checkpoint_bytes_per_principal,
      ParseQuota("max_checkpoint_bytes_per_principal",
                 absl::GetFlag(FLAGS_max_checkpoint_bytes_per_principal),
                 capacity));
  if (absl::Status s = ValidateJobLimits(limits); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
  }
  options.events.max_events_per_job = absl::GetFlag(FLAGS_max_events_per_job);
  options.events.max_events = absl::GetFlag(FLAGS_max_events);
  if (options.events.max_events_per_job < 1) {
    return absl::InvalidArgumentError("--max_events_per_job: must be >= 1");
  }
  if (options.events.max_events < options.events.max_events_per_job) {
    return absl::InvalidArgumentError(
        "--max_events: must be >= --max_events_per_job");
  }
  return absl::OkStatus();
}

absl::Status ApplyGrpcFlags(grpc::ServerBuilder& builder) {
  const int threads = absl::GetFlag(FLAGS_grpc_max_threads);
  if (threads < 2)
    return absl::InvalidArgumentError("--grpc_max_threads: must be >= 2");
  grpc::ResourceQuota quota("strongholdd");
  quota.SetMaxThreads(threads);
  builder.SetResourceQuota(quota);
  absl::StatusOr<int64_t> message_bytes =
      ParseBytes(absl::GetFlag(FLAGS_grpc_max_receive_message_bytes));
  if (!message_bytes.ok() || *message_bytes < 1024 ||
      *message_bytes > INT32_MAX) {
    return absl::InvalidArgumentError(
        "--grpc_max_receive_message_bytes: a size from 1KiB to 2GiB - 1 (e.g. "
        "1MiB)");
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(*message_bytes));
  const absl::Duration time = absl::GetFlag(FLAGS_grpc_keepalive_time);
  const absl::Duration timeout = absl::GetFlag(FLAGS_grpc_keepalive_timeout);
  if (time < absl::Seconds(1) || timeout < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "--grpc_keepalive_time, --grpc_keepalive_timeout: >= 1s");
  }
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(time)));
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  return absl::OkStatus();
}

}  // namespace stronghold::server
