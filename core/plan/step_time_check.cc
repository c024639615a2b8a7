#include "core/plan/step_time_check.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace stronghold::core {

StepTimeCheck::StepTimeCheck(double predicted_step_s,
                             StepTimeCheckOptions options)
    : predicted_s_(predicted_step_s), options_(std::move(options)) {}

std::optional<std::string> StepTimeCheck::Observe(int64_t step,
                                                  double measured_s) {
  if (first_step_ < 0) first_step_ = step;
  if (step - first_step_ < options_.skip_first_steps) return std::nullopt;
  if (!(predicted_s_ > 0) || !std::isfinite(measured_s)) return std::nullopt;
  const double ratio = measured_s / predicted_s_;
  if (std::abs(ratio - 1) <= options_.tolerance) return std::nullopt;
  const int sign = ratio > 1 ? 1 : -1;
  if (last_sign_ == sign &&
      step - last_reported_ < options_.repeat_after_steps) {
    return std::nullopt;
  }
  last_sign_ = sign;
  last_reported_ = step;
  return absl::StrFormat(
      "step %d took %.3g s, %.0f%% %s than the predicted %.3g s (%s); said "
      "again when it turns %s or after %d steps",
      step, measured_s, 100 * std::abs(ratio - 1),
      sign > 0 ? "slower" : "faster", predicted_s_, options_.profile,
      sign > 0 ? "faster" : "slower", options_.repeat_after_steps);
}

}  // namespace stronghold::core
