// The automatic options chosen from the schedule model
// (core/plan/auto_config.h).
#include "core/plan/auto_config.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/plan/planner.h"
#include "core/plan/prediction.h"
#include "core/plan/schedule_model.h"

namespace stronghold::core {
namespace {

// "speculative updates on, embedding optimizer on the device, 2
// device-resident layers" for the automatic options of `c`.
std::string Settings(const JobConfig& c) {
  const OffloadConfig::Automatic& a = c.offload.automatic;
  std::vector<std::string> parts;
  if (a.speculative_updates) {
    parts.push_back(absl::StrCat("speculative updates ",
                                 c.offload.speculative_updates ? "on" : "off"));
  }
  if (a.device_embedding_optimizer) {
    parts.push_back(c.offload.device_embedding_optimizer
                        ? "embedding optimizer on the device"
                        : "embedding optimizer on the CPU");
  }
  if (a.device_resident_layers) {
    parts.push_back(absl::StrCat(c.offload.device_resident_layers,
                                 " device-resident layers"));
  }
  return absl::StrJoin(parts, ", ");
}

// The values each automatic option may take for `c` (the previous default
// first). An option that cannot apply to the job has only its default.
struct Candidates {
  std::vector<bool> speculative{false};
  std::vector<bool> embedding{false};
  std::vector<int> resident{0};
};

Candidates CandidatesFor(const JobConfig& c) {
  Candidates out;
  const OffloadConfig& o = c.offload;
  const bool windowed = o.method != OffloadMethod::kResident;
  if (o.automatic.speculative_updates && windowed &&
      UpdatesNeedWholeGradient(c.training.clip_norm, c.training.precision)) {
    out.speculative.push_back(true);
  }
  if (o.automatic.device_embedding_optimizer) out.embedding.push_back(true);
  if (o.automatic.device_resident_layers &&
      o.method == OffloadMethod::kStronghold) {
    // Powers of two below the layers, leaving the window at least one.
    const int most =
        c.model.layers - std::max(1, o.window) /* window <= layers - N */;
    for (int n = 1; n <= most; n *= 2) out.resident.push_back(n);
  }
  return out;
}

// The job with the automatic options at the given values and no longer
// automatic.
JobConfig With(const JobConfig& c, bool speculative, bool embedding,
               int resident) {
  JobConfig out = c;
  OffloadConfig& o = out.offload;
  if (o.automatic.speculative_updates) o.speculative_updates = speculative;
  if (o.automatic.device_embedding_optimizer)
    o.device_embedding_optimizer = embedding;
  if (o.automatic.device_resident_layers) o.device_resident_layers = resident;
  return out;
}

// The predicted step of `c` on the node, or a negative number when it does
// not validate, fit or predict.
double PredictedStep(const JobConfig& c, const NodeBudgets& node,
                     const HardwareProfile& profile) {
  if (!ValidateJobConfig(c, {.rendezvous = false}).ok()) return -1;
  const ExecutionPlan plan = PlanExecution(c, node);
  if (!plan.fits) return -1;
  absl::StatusOr<StepPrediction> p =
      PredictStep(c, PredictSettledPlan(c, plan, profile), profile);
  return p.ok() ? p->step_s : -1;
}

}  // namespace

AutomaticChoice ChooseAutomaticOptions(
    const JobConfig& config, const NodeBudgets& node,
    const absl::StatusOr<HardwareProfile>& profile) {
  AutomaticChoice out;
  out.config = With(config, false, false, 0);
  out.config.offload.automatic = {};
  if (!config.offload.automatic.any()) return out;
  // What the reason names: the options that were automatic, at their values.
  JobConfig named = out.config;
  named.offload.automatic = config.offload.automatic;
  if (config.distributed.world_size > 1) {
    out.reason = absl::StrCat(
        "automatic options: ", Settings(named), " (with ",
        config.distributed.world_size,
        " ranks every rank must choose alike, and updates on the device do "
        "not shard)");
    return out;
  }
  if (!profile.ok()) {
    out.reason = absl::StrCat("automatic options: ", Settings(named),
                              " (no hardware profile to predict with: ",
                              profile.status().message(), ")");
    return out;
  }
  const Candidates candidates = CandidatesFor(config);
  out.default_step_s = PredictedStep(out.config, node, *profile);
  out.candidates = 1;
  // The fastest other combination that fits.
  double fastest_s = -1;
  JobConfig fastest;
  for (const bool speculative : candidates.speculative) {
    for (const bool embedding : candidates.embedding) {
      for (const int resident : candidates.resident) {
        if (!speculative && !embedding && resident == 0) continue;
        const JobConfig c = With(config, speculative, embedding, resident);
        const double step_s = PredictedStep(c, node, *profile);
        ++out.candidates;
        if (step_s >= 0 && (fastest_s < 0 || step_s < fastest_s)) {
          fastest_s = step_s;
          fastest = c;
        }
      }
    }
  }
  // It replaces the default only at least kMinAutomaticGain faster (or
  // where the default does not fit).
  const bool kept_default =
      fastest_s < 0 ||
      (out.default_step_s >= 0 &&
       fastest_s >= out.default_step_s * (1 - kMinAutomaticGain));
  const double best_s = kept_default ? out.default_step_s : fastest_s;
  if (!kept_default) out.config = fastest;
  out.config.offload.automatic = {};
  out.predicted_step_s = best_s;
  named = out.config;
  named.offload.automatic = config.offload.automatic;
  const std::string on = absl::StrCat(" on hardware profile ", profile->name);
  if (out.default_step_s < 0 && best_s < 0) {
    out.reason = absl::StrCat("automatic options: ", Settings(named),
                              " (no combination fits or predicts", on, ")");
  } else if (out.default_step_s < 0) {
    out.reason = absl::StrFormat(
        "automatic options: %s: predicted %.4g s/step%s; with them all off "
        "the job does not fit (%d combinations compared)",
        Settings(named), best_s, on, out.candidates);
  } else if (kept_default) {
    out.reason = absl::StrFormat(
        "automatic options: %s: predicted %.4g s/step%s; no other of %d "
        "combinations is predicted %.0f%% faster",
        Settings(named), best_s, on, out.candidates, 100 * kMinAutomaticGain);
  } else {
    out.reason = absl::StrFormat(
        "automatic options: %s: predicted %.4g s/step%s against %.4g with "
        "them all off, the previous default (best of %d combinations)",
        Settings(named), best_s, on, out.default_step_s, out.candidates);
  }
  return out;
}

}  // namespace stronghold::core
