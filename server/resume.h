// How the daemon continues jobs from checkpoints (docs/checkpoints.md):
//  - on request: JobSpec.resume_from names another job's checkpoint; the
//    new job takes that job's spec with the submitted fields on top, and
//    starts from the checkpoint;
//  - after a restart or a crash: a job that was queued or running resumes
//    from its own newest intact checkpoint (else from its resume_from, else
//    from step 0).
// Knows nothing about gRPC or the job manager's locking: plain functions.
#ifndef STRONGHOLD_SERVER_RESUME_H_
#define STRONGHOLD_SERVER_RESUME_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/plan/job_config.h"
#include "core/train/trainer.h"
#include "server/job_store.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

// A checkpoint of a job, as JobSpec.resume_from names it.
struct CheckpointRef {
  int64_t job_id = 0;
  std::string checkpoint;  // "step-000010"; empty = the job's newest
};

// Accepts "jobs/3", "3", "jobs/3@step-000010" and "jobs/3@10".
// INVALID_ARGUMENT naming resume_from otherwise.
absl::StatusOr<CheckpointRef> ParseCheckpointRef(const std::string& text);
// "jobs/3@step-000010"
std::string FormatCheckpointRef(const CheckpointRef& ref);

// `base` (the source job's effective spec) with every field set in
// `overrides` on top; a repeated field given in `overrides` replaces
// base's. resume_from is left to the caller.
stronghold::v1::JobSpec MergeSpecs(const stronghold::v1::JobSpec& base,
                                   const stronghold::v1::JobSpec& overrides);

// A copy of job `id`'s record; nullopt for an unknown job.
using JobLookup = std::function<std::optional<stronghold::v1::Job>(int64_t id)>;

// With spec.resume_from: the source job's spec (found with `lookup`) with
// `spec`'s fields on top, and resume_from pinned to one checkpoint ("the
// newest" becomes its name now, so the job keeps the same starting point
// however often it is restarted). Without: `spec` unchanged. NOT_FOUND
// naming resume_from for an unknown job or checkpoint.
absl::StatusOr<stronghold::v1::JobSpec> ResolveResume(
    const stronghold::v1::JobSpec& spec, const JobLookup& lookup);

// The directory of the checkpoint a resolved spec's resume_from pins, in
// `store`; empty without one.
std::string ResumeDir(const stronghold::v1::JobSpec& spec,
                      const JobStore& store);

// The cheap checks SubmitJob makes on a checkpoint a job will start from:
// the manifest is intact, every file is there with its size, the model is
// the job's, and the job has steps left. Returns the checkpoint's step.
absl::StatusOr<int64_t> CheckResumeSource(const std::string& checkpoint_dir,
                                          const core::JobConfig& config);

struct Restored {
  int64_t step = 0;  // the step training continues after; 0 = fresh start
  std::string note;  // for the job's events; empty when nothing happened
};

// Restores `trainer` for a job starting (again): from the newest of its own
// checkpoints in `own_checkpoints_dir` that loads intact (a damaged one is
// skipped, and said so in the note), else from `resume_dir` (the pinned
// checkpoint of resume_from; empty = none), else not at all when the job
// has no checkpoint. Errors: an own checkpoint of another shape, a damaged
// resume_dir, or own checkpoints all damaged: the job must not train from
// the wrong state, nor silently start over.
absl::StatusOr<Restored> RestoreTrainer(core::Trainer& trainer,
                                        const std::string& own_checkpoints_dir,
                                        const std::string& resume_dir);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_RESUME_H_
