// PlanJob's prediction (server/plan_prediction.h).
#include "server/plan_prediction.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/plan/planner.h"
#include "core/plan/prediction.h"
#include "core/util/status_macros.h"
#include "server/proto_convert.h"

namespace stronghold::server {
namespace {

namespace v1 = ::stronghold::v1;

void ToProto(const core::ResourceSeconds& r, v1::ResourceSeconds* out) {
  out->set_compute_s(r.compute_s);
  out->set_pcie_s(r.pcie_s);
  out->set_h2d_s(r.h2d_s);
  out->set_d2h_s(r.d2h_s);
  out->set_cpu_optimizer_s(r.cpu_optimizer_s);
  out->set_nvme_s(r.nvme_s);
}

void ToProto(const core::StepPrediction& p, v1::PredictedStep* out) {
  out->set_predicted_step_s(p.step_s);
  out->set_samples_per_s(p.samples_per_s);
  out->set_tokens_per_s(p.tokens_per_s);
  out->set_model_tflops(p.model_tflops);
  out->set_mfu(p.mfu);
  out->set_bottleneck(core::BottleneckName(p.bottleneck));
  out->set_largest_floor_s(p.floor_s);
  ToProto(p.floors, out->mutable_floors());
  ToProto(p.busy, out->mutable_busy());
  ToProto(p.critical, out->mutable_critical());
  out->set_layer_forward_s(p.layer_forward_s);
  out->set_layer_backward_s(p.layer_backward_s);
}

}  // namespace

absl::StatusOr<core::HardwareProfile> RequestedProfile(
    const v1::PlanJobRequest& request, const core::JobConfig& config,
    const NodeProfileSource& node_profile, bool* measured) {
  *measured = false;
  const std::string& name = request.hardware_profile();
  const std::string& json = request.hardware_profile_json();
  if (!name.empty() && !json.empty()) {
    return absl::InvalidArgumentError(
        "hardware_profile and hardware_profile_json: give one, not both");
  }
  if (!json.empty()) {
    absl::StatusOr<core::HardwareProfile> p = core::ParseHardwareProfile(json);
    if (!p.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("hardware_profile_json: ", p.status().message()));
    }
    return p;
  }
  if (!name.empty()) return core::NamedHardwareProfile(name);
  if (!node_profile) {
    return absl::FailedPreconditionError(
        absl::StrCat("this daemon has no measured hardware profile; name one "
                     "(hardware_profile, built in: ",
                     absl::StrJoin(core::NamedHardwareProfiles(), ", "),
                     ") or send one (hardware_profile_json)"));
  }
  *measured = true;
  return node_profile(config);
}

absl::StatusOr<v1::StepPrediction> PredictionToProto(
    const core::JobConfig& config, const core::NodeBudgets& this_node,
    const core::HardwareProfile& profile, bool measured) {
  const core::NodeBudgets node =
      measured ? this_node : core::ProfileNode(profile);
  const core::ExecutionPlan plan = core::PlanExecution(config, node);
  ASSIGN_OR_RETURN(const core::JobPrediction p,
                   core::PredictJob(config, node, plan, profile));
  v1::StepPrediction out;
  out.set_fits(plan.fits);
  out.set_reason(plan.fits ? "" : plan.reason);
  out.set_device_budget_bytes(plan.budget_device_bytes);
  out.set_host_budget_bytes(plan.budget_host_bytes);
  out.set_max_layers(core::MaxTrainableLayers(config, node));
  out.set_hardware_profile(profile.name);
  out.set_hardware_description(profile.description);
  out.set_measured_profile(measured);
  out.set_window(p.plan.window);
  out.set_kept_activation_layers(p.plan.kept_activation_layers);
  if (p.predicted.ok()) ToProto(*p.predicted, out.mutable_predicted());
  for (const core::PredictedAlternative& a : p.alternatives) {
    v1::PlanAlternative* alt = out.add_alternatives();
    alt->set_name(a.name);
    alt->set_method(ToProto(a.plan.method));
    alt->set_window(a.plan.window);
    alt->set_kept_activation_layers(a.plan.kept_activation_layers);
    alt->set_fits(a.plan.fits);
    alt->set_reason(a.plan.fits ? "" : a.plan.reason);
    if (a.predicted.ok()) ToProto(*a.predicted, alt->mutable_predicted());
  }
  return out;
}

}  // namespace stronghold::server
