// The reference training step: the RESIDENT method in fp32 on the host
// device, plain LibTorch autograd over the whole model (core/model/gpt.h)
// into the host state's gradients, then the global norm and the same fused
// AdamW as the engine (core/optim/fused_adamw.h), buffer by buffer. The
// windowed engine (core/engine/engine.h) is checked against it bit for bit
// (tests/core/engine_test.cc, the parity tests), so it stays the simplest
// correct statement of one step: no windows, no overlap, no mixed precision.
#ifndef STRONGHOLD_CORE_TRAIN_REFERENCE_STEP_H_
#define STRONGHOLD_CORE_TRAIN_REFERENCE_STEP_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/engine/engine.h"
#include "core/engine/loss_scale.h"
#include "core/engine/step_metrics.h"
#include "core/optim/fused_adamw.h"
#include "core/plan/job_config.h"
#include "core/train/host_state.h"

namespace stronghold::core {

// Training step `step` (1-based) over `host`, whose masters track gradients
// (HostState::TrackGradients): every micro-batch's forward and backward from
// `batches` (an error from it ends the step), then one AdamW update of every
// buffer, advancing `loss_scale`'s update count. Fills the fields of
// `metrics` the engine would (loss, grad_norm, compute_s, optimizer_s; the
// others it has none of). A non-finite gradient fails the step before any
// update (NonFiniteGradient). Exceptions become a status naming the step.
absl::Status ReferenceStep(const JobConfig& config, int64_t step,
                           const BatchSource& batches, HostState* host,
                           FusedAdamW* optimizer, LossScaleState* loss_scale,
                           StepMetrics* metrics);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TRAIN_REFERENCE_STEP_H_
