// PlanJob's prediction (PlanJobRequest.predict, MemoryPlan.prediction):
// which hardware profile a request names (a built-in one, one it sends as
// JSON, or the node's own measured one), the job's predicted step and its
// alternatives (core/plan/prediction.h), as the API's messages.
#ifndef STRONGHOLD_SERVER_PLAN_PREDICTION_H_
#define STRONGHOLD_SERVER_PLAN_PREDICTION_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "core/plan/execution_plan.h"
#include "core/plan/hardware_profile.h"
#include "core/plan/job_config.h"
#include "core/plan/node_budgets.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

// The node's own profile for a job (its layer shape measured once and
// cached: server/node_profile.h); empty when the daemon has none.
using NodeProfileSource = std::function<absl::StatusOr<core::HardwareProfile>(
    const core::JobConfig&)>;

// The profile a request names: hardware_profile_json (parsed strictly:
// INVALID_ARGUMENT naming the field), else hardware_profile (NOT_FOUND
// listing the built-in names), else `node_profile` (FAILED_PRECONDITION
// when there is none). Both fields set: INVALID_ARGUMENT.
absl::StatusOr<core::HardwareProfile> RequestedProfile(
    const stronghold::v1::PlanJobRequest& request,
    const core::JobConfig& config, const NodeProfileSource& node_profile,
    bool* measured);

// The job planned and predicted on `profile`: on the profile's machine
// (core::ProfileNode) for a named or sent profile, on `node` (this node's
// budgets) for the measured one.
absl::StatusOr<stronghold::v1::StepPrediction> PredictionToProto(
    const core::JobConfig& config, const core::NodeBudgets& node,
    const core::HardwareProfile& profile, bool measured);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_PLAN_PREDICTION_H_
