// Whether a plan fits: the one place that decides it (DecideFit, which
// PlanExecution in core/plan/planner.h calls last), and the one status every
// consumer refuses a plan that does not fit with (CheckFits). A plan's
// `fits` and `reason` are set here and nowhere else; the reason carries the
// numbers (needed, budget, the smallest budget that works).
#ifndef STRONGHOLD_CORE_PLAN_FIT_H_
#define STRONGHOLD_CORE_PLAN_FIT_H_

#include "absl/status/status.h"
#include "core/plan/execution_plan.h"
#include "core/plan/job_config.h"
#include "core/plan/node_budgets.h"

namespace stronghold::core {

// Sets plan.fits and plan.reason from the plan's totals (bytes_*) and its
// budgets: the device budget first, then host memory, then (windowed plans)
// the node's ssd_bytes; a host shortfall left with every layer on the NVMe
// tier says so.
void DecideFit(const JobConfig& config, const NodeBudgets& node,
               ExecutionPlan& plan);

// OK when the plan fits; RESOURCE_EXHAUSTED with its reason otherwise.
absl::Status CheckFits(const ExecutionPlan& plan);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_FIT_H_
