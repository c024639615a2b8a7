// The step policy: AdamW hyper-parameters, clipping, and what follows a
// step's backward (core/engine/step_policy.h).
#include "core/engine/step_policy.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/engine/loss_scale.h"

namespace stronghold::core {

AdamWStep AdamWHyper(const TrainingConfig& t, int64_t step, int64_t adam_step,
                     double grad_scale) {
  AdamWStep h;
  h.lr = static_cast<float>(LearningRate(t, step));
  h.beta1 = static_cast<float>(t.beta1);
  h.beta2 = static_cast<float>(t.beta2);
  h.eps = static_cast<float>(t.eps);
  h.weight_decay = static_cast<float>(t.weight_decay);
  h.step = adam_step;
  h.grad_scale = static_cast<float>(grad_scale);
  return h;
}

double ClipFactor(const TrainingConfig& t, double norm) {
  return (t.clip_norm > 0 && norm > t.clip_norm) ? t.clip_norm / (norm + 1e-6)
                                                 : 1.0;
}

absl::Status NonFiniteGradient(int64_t step,
                               const std::vector<BufferLayout>& layouts,
                               const std::vector<StepStats>& stats) {
  for (size_t b = 0; b < stats.size() && b < layouts.size(); ++b) {
    if (stats[b].nonfinite_count > 0 || !std::isfinite(stats[b].grad_sq_sum)) {
      std::string where = layouts[b].name;
      for (const TensorSlice& t : layouts[b].tensors) {
        if (stats[b].first_nonfinite >= t.offset &&
            stats[b].first_nonfinite < t.offset + t.numel()) {
          where = absl::StrCat(layouts[b].name, ".", t.name, " element ",
                               stats[b].first_nonfinite - t.offset);
        }
      }
      return absl::InternalError(absl::StrCat(
          "step ", step, ": the gradient is not finite in ", where, " (",
          stats[b].nonfinite_count, " non-finite elements in ", layouts[b].name,
          "); the training diverged: lower training.lr or set "
          "training.clip_norm"));
    }
  }
  return absl::InternalError(
      absl::StrCat("step ", step, ": the gradient norm is not finite"));
}

bool DeferUpdates(const TrainingConfig& t, Precision precision,
                  bool speculative) {
  return UpdatesNeedWholeGradient(t.clip_norm, precision) && !speculative;
}

StepDecision DecideStep(const TrainingConfig& t, Precision precision,
                        bool speculative, double grad_norm, double loss_scale) {
  StepDecision d;
  d.finite = std::isfinite(grad_norm);
  const bool fp16 = precision == Precision::kFp16;
  d.fail =
      !d.finite && !(fp16 && loss_scale / kLossScaleFactor >= kMinLossScale);
  d.roll_back = speculative && (!d.finite || ClipFactor(t, grad_norm) != 1.0);
  d.grad_scale = ClipFactor(t, grad_norm) / loss_scale;
  return d;
}

}  // namespace stronghold::core
