// The step policy of the windowed engine: what a training step does with its
// gradients once their global norm is known, as pure functions of the
// training configuration, the precision, the norm and the loss scale (no
// device, no LibTorch). It owns:
//   - when the updates run: as each gradient lands, deferred to after
//     backward (global-norm clipping and fp16 need every gradient first), or
//     speculatively as gradients land with a backup to roll back to
//     (offload.speculative_updates, docs/engine.md);
//   - what follows backward: keep the step, roll speculative updates back
//     (and redo them clipped), skip it on an fp16 overflow
//     (core/engine/loss_scale.h), or fail the job when the gradient is not
//     finite at any scale;
//   - the AdamW hyper-parameters and clip factor of a step, shared with the
//     RESIDENT reference (core/train/trainer.cc).
#ifndef STRONGHOLD_CORE_ENGINE_STEP_POLICY_H_
#define STRONGHOLD_CORE_ENGINE_STEP_POLICY_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "core/model/gpt_layout.h"
#include "core/optim/optimizer.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

// The AdamW hyper-parameters of training step `step` (1-based; the learning
// rate follows it) as AdamW update number `adam_step` (bias correction; below
// `step` by the skipped fp16 steps), each gradient element multiplied by
// `grad_scale` (clip factor / loss scale).
AdamWStep AdamWHyper(const TrainingConfig& training, int64_t step,
                     int64_t adam_step, double grad_scale);

// clip_norm / (norm + 1e-6) when clipping applies, else 1.
double ClipFactor(const TrainingConfig& training, double norm);

// The error of a step whose gradient is not finite: names the first buffer
// (in ModelLayout order) with a non-finite element, and the element.
absl::Status NonFiniteGradient(int64_t step,
                               const std::vector<BufferLayout>& layouts,
                               const std::vector<StepStats>& stats);

// Whether a step's host updates wait for the end of backward: clipping needs
// the global norm before any update, fp16 needs to know that no layer
// overflowed (else the whole step is skipped). Speculative updates
// (`speculative`) run as gradients land instead, as if the step were not
// clipped and finite, and are rolled back when it turns out to be.
bool DeferUpdates(const TrainingConfig& training, Precision precision,
                  bool speculative);

// What a step does once its global gradient norm is known.
struct StepDecision {
  bool finite = true;  // the global gradient norm is finite
  // Not finite, and no smaller loss scale is left to try (or not fp16): the
  // job fails with NonFiniteGradient.
  bool fail = false;
  // Speculative updates are undone: the step is not finite (skipped or
  // failed), or clipped (then redone with `grad_scale`). A speculative step
  // is kept only if its clip factor is 1 and it is finite: then it is
  // exactly the step the deferred path would take.
  bool roll_back = false;
  // Each gradient element's factor in the step's (re)done updates: clip
  // factor / loss scale.
  double grad_scale = 1.0;
};

// fp16: an overflow skips the step (finite false, fail false) and the loss
// scale is halved, down to kMinLossScale; below, the gradient is not finite
// at any scale.
StepDecision DecideStep(const TrainingConfig& training, Precision precision,
                        bool speculative, double grad_norm, double loss_scale);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_ENGINE_STEP_POLICY_H_
