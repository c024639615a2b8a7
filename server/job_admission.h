// What a submitted spec goes through before the daemon plans it (PlanJob)
// or accepts it as a job (SubmitJob): resume_from resolved against the
// source job (server/resume.h), defaults filled in, every field validated,
// the memory planned under the node's budgets; and for a job to run, the
// checks that need its files: its paths opened inside the daemon's roots
// (server/path_confinement.h), the token file, the plan's fit, the
// checkpoint it starts from. Plain functions: no locks (the lookup takes
// the job manager's).
#ifndef STRONGHOLD_SERVER_JOB_ADMISSION_H_
#define STRONGHOLD_SERVER_JOB_ADMISSION_H_

#include <functional>

#include "absl/status/statusor.h"
#include "core/plan/auto_config.h"
#include "core/plan/job_config.h"
#include "core/plan/planner.h"
#include "server/job_store.h"
#include "server/path_confinement.h"
#include "server/resume.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

struct ResolvedJob {
  // The effective spec: every default filled in, resume_from pinned to one
  // checkpoint. What the job record stores and the job runs with.
  stronghold::v1::JobSpec spec;
  core::JobConfig config;    // validated, automatic options chosen
  core::ExecutionPlan plan;  // under the node's budgets; may not fit
  // What the automatic options became and why (MemoryPlan.automatic_choice);
  // empty when the spec set them all.
  std::string automatic_choice;
};

// How a job is planned: core::PlanExecution, or a test's wrapper of it
// (JobManagerOptions::planner).
using Planner = std::function<core::ExecutionPlan(const core::JobConfig&,
                                                  const core::NodeBudgets&)>;

// Chooses a job's automatic options (core::ChooseAutomaticOptions with the
// node's hardware profile: JobManager::Configure).
using Configurator =
    std::function<core::AutomaticChoice(const core::JobConfig&)>;

// Resolves resume_from with `lookup`, validates (INVALID_ARGUMENT naming
// the field and its limit; NOT_FOUND for an unknown resume_from), chooses
// the automatic options with `configure` and plans.
// `validation.rendezvous` false (PlanJob): a distributed spec needs only its
// world size.
// init_from's config.json gives the model's sizes (server/init_from.h),
// opened inside `paths`' roots.
absl::StatusOr<ResolvedJob> ResolveJob(
    const stronghold::v1::JobSpec& submitted, const JobLookup& lookup,
    const core::NodeBudgets& budgets, const Planner& planner,
    const PathConfinement& paths, const Configurator& configure,
    const core::ValidationOptions& validation = {});

// What a job to run must pass besides: its data.source and
// offload.ssd_dirs open inside the roots of `paths` (PERMISSION_DENIED
// naming the field and the roots, revealing nothing about the path), its
// token file is sound (size, ids below model.vocab), its plan fits
// (core::CheckFits: RESOURCE_EXHAUSTED with the plan's reason), and the
// checkpoint of its resume_from is intact as far as the manifest, the files'
// sizes and the model's shape go (every byte is checked when the job starts:
// reading a large checkpoint twice is not cheap).
absl::Status CheckRunnable(const ResolvedJob& job, const JobStore& store,
                           const PathConfinement& paths);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_ADMISSION_H_
