// What one training step measured: the one record of a step's metrics, from
// the engine that runs it to the API that shows it. WindowedEngine::Step
// (core/engine/engine.h) returns it with the engine's fields filled (the
// reference step, core/train/reference_step.h, fills the same ones it can);
// the trainer (core/train/trainer.h) adds its own fields to the same struct
// and hands it to its observer; the daemon converts it to the proto's
// StepMetrics (server/proto_convert.h) field for field, so a member added
// here must reach the proto too (tests/server/proto_convert_test.cc counts
// them).
//
// Times are seconds of the step's wall clock; "exposed" times are those the
// compute queue spent waiting, i.e. what overlap did not hide.
#ifndef STRONGHOLD_CORE_ENGINE_STEP_METRICS_H_
#define STRONGHOLD_CORE_ENGINE_STEP_METRICS_H_

#include <cstdint>

namespace stronghold::core {

struct StepMetrics {
  // Trainer: the position and the step's rates.
  int64_t step = 0;   // 1-based
  int64_t steps = 0;  // the job's training.steps
  // Engine: the mean loss over the global batch, and the global gradient
  // norm before clipping (0 for a skipped fp16 step).
  double loss = 0.0;
  double lr = 0.0;  // trainer: the learning rate of this step
  double grad_norm = 0.0;
  double step_s = 0.0;  // trainer: wall time of the whole step
  // Engine: forward + backward on the compute queue.
  double compute_s = 0.0;
  // Engine, exposed: compute waited for CPU AdamW updates.
  double optimizer_s = 0.0;
  // Engine, exposed: compute waited for weight copies (H2D).
  double h2d_wait_s = 0.0;
  // Engine, exposed: compute waited for the gradient hand-off (D2H).
  double d2h_wait_s = 0.0;
  // Engine, exposed: seconds the engine waited for reads of what H2D sends
  // from the NVMe tier (0 when they were all read ahead in time).
  double nvme_wait_s = 0.0;
  // Trainer: throughput of the step and model FLOPs / step_s / 1e12.
  double samples_per_s = 0.0;
  double tokens_per_s = 0.0;
  double model_tflops = 0.0;
  // Trainer: the window in use (0 for the reference) and the device arena's
  // high-water mark (windowed methods).
  int window = 0;
  int64_t device_peak_bytes = 0;
  // Engine: weights copied host -> device, gradients copied device -> host.
  int64_t h2d_bytes = 0;
  int64_t d2h_bytes = 0;
  // Engine: the NVMe tier's traffic (storage::SpillStreamer::Traffic):
  // spilled state and what H2D sends read from the device, or reused from a
  // staging slot that still held it (no I/O); state and working copies
  // written.
  int64_t nvme_read_bytes = 0;
  int64_t nvme_reused_bytes = 0;
  int64_t nvme_write_bytes = 0;
  // Engine: reads from the tier for H2D outside the step's planned fetch
  // order (each one synchronous): 0 unless the engine's order changed, a
  // performance bug that tests catch.
  int64_t nvme_unplanned_reads = 0;
  // Engine: fp16's dynamic loss scale the loss was multiplied by (else 1).
  double loss_scale = 1.0;
  // Engine: fp16 overflow: no layer was updated (grad_norm 0).
  bool skipped = false;
  // Engine: speculative updates were undone (offload.speculative_updates):
  // the step was clipped or not finite.
  bool rolled_back = false;
  // Engine, per block layer, averaged over micro-batches: forward and
  // backward (with recompute) compute seconds (a profiling step reports the
  // median layer's forward: WindowedEngine::ProfileNextStep), and the CPU
  // AdamW update.
  double layer_forward_s = 0.0;
  double layer_backward_s = 0.0;
  double layer_optimizer_s = 0.0;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_ENGINE_STEP_METRICS_H_
