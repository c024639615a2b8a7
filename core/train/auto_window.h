// The automatic window (offload.window = 0, ExecutionPlan::automatic_window):
// the engine starts with the largest window the budget allows, profiles the
// first step (WindowedEngine::ProfileNextStep), and this chooses the window
// the rest of the job runs with from what that step measured. The trainer
// settles the plan on it (core/plan/planner.h: SettleWindow) and rebuilds the
// engine. Pure functions: no state, no I/O.
#ifndef STRONGHOLD_CORE_TRAIN_AUTO_WINDOW_H_
#define STRONGHOLD_CORE_TRAIN_AUTO_WINDOW_H_

#include <string>

#include "core/device/timeline.h"
#include "core/engine/step_metrics.h"
#include "core/plan/execution_plan.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

struct WindowChoice {
  int window = 0;       // 1 .. max_window
  std::string message;  // why, with the per-layer figures, for the job's log
};

// The smallest window whose prefetch hides a layer's copy behind the compute
// of the layers before it: W * forward(layer) >= H2D(layer), with 25%
// margin, at most `max_window` (the profiled engine's, the largest that
// fits). forward(layer) is `profiled`'s layer_forward_s (the median layer
// with the compute drained after each), H2D(layer) the mean of the block
// layers' copies in `timeline` (GPU-timed on CUDA).
WindowChoice ChooseWindow(const JobConfig& config, const ExecutionPlan& plan,
                          int max_window, const StepMetrics& profiled,
                          const Timeline& timeline);

// ", K of L layers keep their activations ..." for `plan`'s messages.
std::string ActivationsText(const ExecutionPlan& plan, int layers);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TRAIN_AUTO_WINDOW_H_
