// A job's prediction and its alternatives (core/plan/prediction.h).
#include "core/plan/prediction.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/plan/planner.h"
#include "core/plan/window.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

NodeBudgets ProfileNode(const HardwareProfile& profile) {
  return {.device = profile.device_is_host ? "cpu" : "cuda:0",
          .device_bytes = static_cast<int64_t>(profile.device_memory_bytes),
          .host_bytes = static_cast<int64_t>(profile.host_memory_bytes)};
}

ExecutionPlan PredictSettledPlan(const JobConfig& config,
                                 const ExecutionPlan& plan,
                                 const HardwareProfile& profile) {
  if (!plan.automatic_window || !plan.fits) return plan;
  absl::StatusOr<LayerCost> cost = LayerComputeCost(profile, config);
  if (!cost.ok()) return plan;
  const double h2d_s = profile.copy_latency_s +
                       static_cast<double>(plan.parameters_per_layer) *
                           ComputeElementBytes(config.training.precision) /
                           (profile.h2d_gbps * 1e9);
  return SettleWindow(config, plan,
                      HidingWindow(cost->forward_s, h2d_s, plan.window));
}

absl::StatusOr<JobPrediction> PredictJob(const JobConfig& config,
                                         const NodeBudgets& node,
                                         const ExecutionPlan& plan,
                                         const HardwareProfile& profile,
                                         bool alternatives) {
  JobPrediction out;
  out.plan = PredictSettledPlan(config, plan, profile);
  RETURN_IF_ERROR(ComputeFor(profile, config.training.precision).status());
  out.predicted = PredictStep(config, out.plan, profile);
  if (!alternatives) return out;
  const auto add = [&](std::string name, OffloadMethod method, int window) {
    PredictedAlternative a;
    a.name = std::move(name);
    a.config = config;
    a.config.offload.method = method;
    a.config.offload.window = window;
    if (method != OffloadMethod::kStronghold) {
      a.config.offload.device_resident_layers = 0;
      a.config.offload.kept_activation_layers = 0;
    }
    if (method == OffloadMethod::kResident) {
      a.config.offload.speculative_updates = false;
      a.config.offload.device_embedding_optimizer = false;
    }
    const ExecutionPlan planned = PlanExecution(a.config, node);
    a.plan = PredictSettledPlan(a.config, planned, profile);
    if (a.plan.fits) {
      a.predicted = PredictStep(a.config, a.plan, profile);
    } else {
      a.predicted = absl::ResourceExhaustedError(a.plan.reason);
    }
    out.alternatives.push_back(std::move(a));
  };
  add("RESIDENT", OffloadMethod::kResident, 0);
  add("L2L", OffloadMethod::kL2L, 0);
  add("STRONGHOLD (automatic window)", OffloadMethod::kStronghold, 0);
  for (int w : {1, 2, 4, 8, 16}) {
    if (w >= config.model.layers -
                 std::max(0, config.offload.device_resident_layers))
      break;
    add(absl::StrCat("STRONGHOLD W=", w), OffloadMethod::kStronghold, w);
  }
  return out;
}

}  // namespace stronghold::core
