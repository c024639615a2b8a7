// Every conversion between the API's messages (stronghold.v1) and the
// engine's plain structs (core/), in one place, so that a field added on
// either side has one function to reach and one test that notices when it
// does not (tests/server/proto_convert_test.cc fills every field by
// reflection):
//   JobSpec <-> core::JobConfig     what a job trains, both ways;
//   core::ExecutionPlan -> MemoryPlan  what PlanJob returns;
//   core::StepMetrics -> StepMetrics a finished step, as WatchJob shows it.
// Zero or unset API fields take the documented defaults (docs/api.md), so a
// stored job always shows the exact configuration it ran with.
// Plain functions: no locks, no I/O, no validation.
#ifndef STRONGHOLD_SERVER_PROTO_CONVERT_H_
#define STRONGHOLD_SERVER_PROTO_CONVERT_H_

#include "core/engine/step_metrics.h"
#include "core/plan/job_config.h"
#include "core/plan/planner.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

// Fills defaults into unset fields and converts. Does not validate.
// JobSpec.resume_from and init_from have no JobConfig counterpart (the daemon's
// business, not the engine's): the job manager keeps them on the stored
// spec.
core::JobConfig ToJobConfig(const stronghold::v1::JobSpec& spec);

// The effective spec (every default filled in; resume_from and init_from
// empty).
stronghold::v1::JobSpec ToJobSpec(const core::JobConfig& config);

// Replaces the secrets a spec holds (distributed.job_key) with
// core::kRedactedJobKey: what leaves the daemon (GetJob, ListJobs, SubmitJob,
// CancelJob, a checkpoint's job.json) goes through this. The record keeps
// the key: a run after a restart needs it.
void RedactSecrets(stronghold::v1::JobSpec* spec);
void RedactSecrets(stronghold::v1::Job* job);

// Every field of the plan. MemoryPlan.max_layers is not part of a plan (it
// takes a search over plans: core::MaxTrainableLayers); the caller sets it.
stronghold::v1::MemoryPlan ToProto(const core::ExecutionPlan& plan);

// The offload method's proto enum value.
stronghold::v1::OffloadMethod ToProto(core::OffloadMethod method);

// Every field of the step's metrics; mfu is model FLOP/s over
// `device_peak_flops` (left 0 when that is 0, i.e. unknown).
stronghold::v1::StepMetrics ToStepMetrics(const core::StepMetrics& metrics,
                                          double device_peak_flops);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_PROTO_CONVERT_H_
