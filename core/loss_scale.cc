#include "core/loss_scale.h"

namespace stronghold::core {

int ComputeElementBytes(Precision precision) {
  return precision == Precision::kFp32 ? 4 : 2;
}

const char* PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
    default: return "fp32";
  }
}

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
