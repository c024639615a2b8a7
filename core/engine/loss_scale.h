// fp16's dynamic loss scale (no LibTorch).
//
// fp16 has 5 exponent bits: small gradients underflow to zero unless the
// loss is multiplied by a large factor before backward (and the gradients
// divided by it again on the host, in fp32). Too large a factor overflows
// instead. The dynamic policy (the one of apex/Megatron/torch.cuda.amp):
//   - start at kInitialLossScale;
//   - a step whose gradient has any inf/NaN is skipped as a whole (no
//     layer is updated, AdamW's step count does not advance) and the scale
//     is halved;
//   - after kLossScaleGrowthInterval consecutive good steps it is doubled.
// It is decided once per step, over every layer's gradient (docs/engine.md).
// bf16 has fp32's exponent range and needs no scale (always 1).
#ifndef STRONGHOLD_CORE_ENGINE_LOSS_SCALE_H_
#define STRONGHOLD_CORE_ENGINE_LOSS_SCALE_H_

#include <cstdint>

#include "core/plan/job_config.h"

namespace stronghold::core {

// The policy's constants, in one place.
inline constexpr double kInitialLossScale = 65536.0;  // 2^16
inline constexpr int64_t kLossScaleGrowthInterval = 2000;
inline constexpr double kLossScaleFactor =
    2.0;  // halve on overflow, double on growth
// Below this an overflow is no longer a scale problem: the gradient is not
// finite at all (e.g. NaN weights), and the job fails as in fp32.
inline constexpr double kMinLossScale = 1.0;

// What a checkpoint must keep for a resume to continue exactly.
struct LossScaleState {
  double scale = 1.0;          // the loss is multiplied by it; 1 when off
  int64_t good_steps = 0;      // consecutive finite steps at this scale
  int64_t optimizer_step = 0;  // AdamW updates applied so far (steps - skipped)
};

// The state before step 1: scale kInitialLossScale for fp16, else 1.
LossScaleState InitialLossScale(Precision precision);

// Records a step's outcome under fp16 (a no-op on the scale otherwise):
// `finite` = every gradient element was finite. Returns whether the step's
// update is applied (then optimizer_step advances).
bool AdvanceLossScale(Precision precision, bool finite, LossScaleState* state);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_ENGINE_LOSS_SCALE_H_
