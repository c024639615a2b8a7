// Automatic configuration: the speed options a spec leaves unset
// (OffloadConfig::automatic: speculative updates, the embedding's optimizer
// on the device, device-resident layers) are chosen from the schedule model
// (core/plan/schedule_model.h) on the node's hardware profile, as the
// combination whose plan fits and whose predicted step is the shortest. The
// window and the kept activation layers are automatic already (planner.h);
// each candidate is planned with them as the job would be.
//
// The previous default (every option off) is always a candidate and wins
// ties and gains below kMinAutomaticGain, so a job is never configured into
// what the model predicts slower than the old default. Without a profile
// (the daemon runs with --node_profile=false, or measuring failed), or with
// more than one rank (every rank must choose alike, and device-side updates
// do not shard), the options stay off. docs/prediction.md.
//
// Plain C++ (no LibTorch).
#ifndef STRONGHOLD_CORE_PLAN_AUTO_CONFIG_H_
#define STRONGHOLD_CORE_PLAN_AUTO_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/plan/hardware_profile.h"
#include "core/plan/job_config.h"
#include "core/plan/node_budgets.h"

namespace stronghold::core {

// A candidate must be predicted at least this much faster (relative) than
// the previous default to be chosen: below it the model's error decides.
inline constexpr double kMinAutomaticGain = 0.02;

struct AutomaticChoice {
  // The job with every automatic option set (OffloadConfig::automatic
  // cleared): what it runs with and what its effective spec records.
  JobConfig config;
  // What was chosen and why, for the job's events and its plan; empty when
  // the spec left nothing automatic.
  std::string reason;
  // The predictions behind it (0 when none was made).
  double predicted_step_s = 0;
  double default_step_s = 0;
  int candidates = 0;  // plans predicted
};

// Chooses `config`'s automatic options for a node with `node`'s budgets and
// `profile` (its error: why there is none). Pure.
AutomaticChoice ChooseAutomaticOptions(
    const JobConfig& config, const NodeBudgets& node,
    const absl::StatusOr<HardwareProfile>& profile);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_AUTO_CONFIG_H_
