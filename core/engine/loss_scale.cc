#include "core/engine/loss_scale.h"

namespace stronghold::core {

LossScaleState InitialLossScale(Precision precision) {
  LossScaleState s;
  s.scale = precision == Precision::kFp16 ? kInitialLossScale : 1.0;
  return s;
}

bool AdvanceLossScale(Precision precision, bool finite, LossScaleState* state) {
  if (precision != Precision::kFp16) {
    if (finite) ++state->optimizer_step;
    return finite;
  }
  if (!finite) {
    state->scale /= kLossScaleFactor;
    state->good_steps = 0;
    return false;
  }
  ++state->optimizer_step;
  if (++state->good_steps >= kLossScaleGrowthInterval) {
    state->scale *= kLossScaleFactor;
    state->good_steps = 0;
  }
  return true;
}

}  // namespace stronghold::core
