#include "core/train/auto_window.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/plan/planner.h"

namespace stronghold::core {

WindowChoice ChooseWindow(const JobConfig& config, const ExecutionPlan& plan,
                          int max_window, const StepMetrics& profiled,
                          const Timeline& timeline) {
  double h2d = 0;  // the measured copy time of one layer, from the timeline
  int copies = 0;
  for (const Span& span : timeline.spans()) {
    if (span.lane == Lane::kH2D && span.layer > 0 &&
        span.layer <= config.model.layers) {
      h2d += (span.end_ns - span.start_ns) / 1e9;
      ++copies;
    }
  }
  h2d = copies > 0 ? h2d / copies : 0;
  const double fwd = std::max(profiled.layer_forward_s, 1e-9);
  WindowChoice choice;
  choice.window = HidingWindow(profiled.layer_forward_s, h2d, max_window);
  const std::string why =
      std::ceil(1.25 * h2d / fwd) > max_window
          ? "copies are bandwidth-bound: the largest window that fits is used"
          : "copies hidden";
  choice.message = absl::StrFormat(
      "window %d chosen (largest that fits: %d): per layer forward %.2f ms, "
      "backward %.2f ms, H2D %.2f ms, AdamW %.2f ms; %s%s",
      choice.window, max_window, 1e3 * profiled.layer_forward_s,
      1e3 * profiled.layer_backward_s, 1e3 * h2d,
      1e3 * profiled.layer_optimizer_s, why,
      ActivationsText(SettleWindow(config, plan, choice.window),
                      config.model.layers));
  return choice;
}

std::string ActivationsText(const ExecutionPlan& plan, int layers) {
  return absl::StrCat(
      ", ", std::max(0, plan.kept_activation_layers), " of ", layers,
      " layers keep their activations (the others are recomputed)",
      plan.host_checkpoints ? ", activation checkpoints on the host" : "");
}

}  // namespace stronghold::core
