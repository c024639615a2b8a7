// What one principal, and everyone together, may hold on a daemon: queued
// jobs, open WatchJob streams and checkpoint bytes (issue 15 item 6;
// docs/security.md). A principal is a name the service passes in with each
// call (today "local" for every unix-socket peer; authentication will name
// the peer). Past a limit a call fails with RESOURCE_EXHAUSTED naming the
// limit, its value and the strongholdd flag that sets it; nothing else
// changes and the daemon keeps serving.
//
// Checkpoint bytes are reserved at submission: a job's worst case
// (CheckpointBytes of its plan times the checkpoints it can keep at once,
// KeptCheckpoints) must fit its own quota and, with everything the
// principal's other jobs hold or reserve, the principal's. While it runs
// the job's directory is measured after every checkpoint, and a job found
// over its quota fails (RESOURCE_EXHAUSTED) before writing another.
#ifndef STRONGHOLD_SERVER_JOB_LIMITS_H_
#define STRONGHOLD_SERVER_JOB_LIMITS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/plan/job_config.h"

namespace stronghold::server {

// The principal of calls that name none (in-process callers, tests).
inline constexpr char kLocalPrincipal[] = "local";

// Each limit is >= 1 (bytes: >= 1 byte); the defaults are the flags'.
struct JobLimits {
  int max_queued_jobs = 256;               // --max_queued_jobs
  int max_queued_jobs_per_principal = 64;  // --max_queued_jobs_per_principal
  int max_watch_streams = 1024;            // --max_watch_streams
  int max_watch_streams_per_principal =
      256;  // --max_watch_streams_per_principal
  // Checkpoint bytes one job may keep at once, and all of one principal's
  // jobs together (ended ones included until deleted). INT64_MAX = none;
  // strongholdd resolves its flags against the state directory's size.
  int64_t max_checkpoint_bytes_per_job =
      INT64_MAX;  // --max_checkpoint_bytes_per_job
  int64_t max_checkpoint_bytes_per_principal = INT64_MAX;  // ..._per_principal
};

// INVALID_ARGUMENT naming the first limit below 1.
absl::Status ValidateJobLimits(const JobLimits& limits);

// RESOURCE_EXHAUSTED: "<what>: <held> of <limit> (strongholdd --<flag>)",
// then `hint` when not empty.
absl::Status LimitError(const std::string& what, int64_t held, int64_t limit,
                        const std::string& flag, const std::string& hint = "");

// Bytes of one checkpoint of a model of `parameters` parameters (its plan's
// count), an upper bound: fp32 masters (model.safetensors) and AdamW's two
// moments (optimizer.safetensors), 12 bytes per parameter, plus the
// safetensors headers, job.json and the manifest. Saturates.
int64_t CheckpointBytes(int64_t parameters, const core::ModelConfig& model);

// CheckpointBytes x KeptCheckpoints: what a job may hold on disk at once.
int64_t ReservedCheckpointBytes(int64_t parameters,
                                const core::JobConfig& config);

// The most checkpoints a job keeps at once: every checkpoint.every_steps
// steps and at the last, at most keep_last (0 = all) plus the one being
// written before the oldest is pruned; one more for a checkpoint written
// when it is cancelled with a checkpoint or the daemon stops.
int64_t KeptCheckpoints(const core::JobConfig& config);

// The checks, each RESOURCE_EXHAUSTED naming the limit and its flag:
// SubmitJob with `queued` jobs queued, `queued_mine` of them the
// principal's;
absl::Status CheckQueueLimits(const JobLimits& limits,
                              const std::string& principal, int64_t queued,
                              int64_t queued_mine);
// a job's worst case against its quota (returns it: the bytes to reserve);
absl::StatusOr<int64_t> CheckJobCheckpoints(const JobLimits& limits,
                                            int64_t parameters,
                                            const core::JobConfig& config);
// a job of `bytes` beside the `held` bytes of the principal's other jobs;
absl::Status CheckPrincipalCheckpoints(const JobLimits& limits,
                                       const std::string& principal,
                                       int64_t held, int64_t bytes);
// what a running job's checkpoints hold on disk against its quota.
absl::Status CheckCheckpointsHeld(const JobLimits& limits, int64_t bytes);

// Sizes a --max_checkpoint_bytes_* flag: "512GiB" or a percentage of
// `capacity_bytes` (the state directory's file system), "25%".
absl::StatusOr<int64_t> ParseQuota(const std::string& flag,
                                   const std::string& text,
                                   int64_t capacity_bytes);

// Bytes of the regular files under `dir` (0 when it does not exist).
int64_t DirectoryBytes(const std::string& dir);

// Counts the streams each principal holds open against a per-principal and
// a total cap. Thread-safe.
class StreamSlots {
 public:
  StreamSlots(int max_total, int max_per_principal)
      : max_total_(max_total), max_per_principal_(max_per_principal) {}

  // Held until destroyed.
  class Slot {
   public:
    Slot(Slot&& other) noexcept
        : slots_(other.slots_), principal_(std::move(other.principal_)) {
      other.slots_ = nullptr;
    }
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class StreamSlots;
    Slot(StreamSlots* slots, std::string principal)
        : slots_(slots), principal_(std::move(principal)) {}
    StreamSlots* slots_;
    std::string principal_;
  };

  // RESOURCE_EXHAUSTED naming the limit and its flag when either is full.
  absl::StatusOr<Slot> Acquire(const std::string& principal);

  int open() {
    absl::MutexLock lock(&mu_);
    return total_;
  }

 private:
  const int max_total_;
  const int max_per_principal_;

  absl::Mutex mu_;
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> per_principal_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_LIMITS_H_
