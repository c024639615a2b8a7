// A job's predicted step time, as `strongholdctl plan --predict` shows it:
// the job as planned (an automatic window settled as the trainer would
// settle it, from the profile's per-layer costs instead of a profiled
// step), and the alternatives a user could ask for instead (the other
// methods, STRONGHOLD's windows), each planned on the same budgets and
// predicted on the same profile. Plain C++ (no LibTorch).
#ifndef STRONGHOLD_CORE_PLAN_PREDICTION_H_
#define STRONGHOLD_CORE_PLAN_PREDICTION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/plan/execution_plan.h"
#include "core/plan/hardware_profile.h"
#include "core/plan/job_config.h"
#include "core/plan/node_budgets.h"
#include "core/plan/schedule_model.h"

namespace stronghold::core {

struct PredictedAlternative {
  std::string name;    // "RESIDENT", "L2L", "STRONGHOLD W=4", ...
  JobConfig config;    // the job with the alternative's settings
  ExecutionPlan plan;  // settled where the window is automatic
  // Set when the plan fits (else plan.reason says why not).
  absl::StatusOr<StepPrediction> predicted =
      absl::FailedPreconditionError("does not fit");
};

struct JobPrediction {
  ExecutionPlan plan;  // the job's plan, settled as predicted
  // INVALID_ARGUMENT when the job's plan does not fit (the alternatives
  // are still predicted).
  absl::StatusOr<StepPrediction> predicted =
      absl::InvalidArgumentError("not predicted");
  std::vector<PredictedAlternative> alternatives;
};

// The machine a named profile describes, as the planner sees a node: its
// device ("cpu" when device_is_host, else "cuda:0") and its whole device and
// host memory as budgets (the daemon's defaults on a node of its own).
NodeBudgets ProfileNode(const HardwareProfile& profile);

// The window an automatic plan would settle on for `profile`: HidingWindow
// (core/plan/window.h) of the profile's layer forward and H2D times; the
// plan unchanged when its window is not automatic.
ExecutionPlan PredictSettledPlan(const JobConfig& config,
                                 const ExecutionPlan& plan,
                                 const HardwareProfile& profile);

// Predicts `plan` (PlanExecution(config, node)) and, with `alternatives`,
// RESIDENT, L2L, STRONGHOLD with an automatic window and windows 1, 2, 4,
// 8, 16 (those below model.layers). NOT_FOUND when the profile lacks the
// job's precision.
absl::StatusOr<JobPrediction> PredictJob(const JobConfig& config,
                                         const NodeBudgets& node,
                                         const ExecutionPlan& plan,
                                         const HardwareProfile& profile,
                                         bool alternatives = true);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_PREDICTION_H_
