// The window of the windowed engine: the one rule that sets it from what the
// user asked (ResolveWindow), and what a window of W layers holds on the
// compute device (slots, arena, working memory, the activation checkpoints
// and the kept activations), from which the largest window that fits a
// device budget follows (MaxWindow). Pure functions of the job's
// configuration; PlanExecution (core/plan/planner.h) resolves them once into
// the ExecutionPlan, and nothing below the plan derives them again.
#ifndef STRONGHOLD_CORE_PLAN_WINDOW_H_
#define STRONGHOLD_CORE_PLAN_WINDOW_H_

#include <cstdint>

#include "core/plan/job_config.h"

namespace stronghold::core {

// The window rule, written here and nowhere else: L2L -> 1 (one layer at a
// time), RESIDENT -> every layer (model.layers), STRONGHOLD -> offload.window,
// or when that is 0 the largest window whose arena fits `device_budget`
// (MaxWindow; <= 0 = no limit), at least 1, marked automatic (the trainer
// settles it after profiling, SettleWindow in core/plan/planner.h).
struct ResolvedWindow {
  int window = 0;
  bool automatic = false;
};
ResolvedWindow ResolveWindow(const JobConfig& config, int64_t device_budget);

// The automatic window's rule once the first step is profiled: the
// smallest window whose prefetch hides a layer's H2D copy behind the
// forward of the layers before it, W * forward_s >= 1.25 * h2d_s (25%
// margin), at least 1 and at most `max_window`. The trainer applies it to
// measured figures (core/train/auto_window.h), the schedule model to
// predicted ones (core/plan/prediction.h).
int HidingWindow(double forward_s, double h2d_s, int max_window);

// Device slots the windowed engine allocates for `window` (L2L: one).
int WindowSlots(const JobConfig& config, int window);
// Host buffers the engine reads what H2D sends from the NVMe tier into,
// ahead of use (core/engine/tier_reader.h): one per slot and one more, so that
// a read can start while the slots' copies are still queued.
int TierReadRing(const JobConfig& config, int window);
// Device bytes the windowed engine allocates (its arena): slots (weights and
// gradient of one layer each), embedding and final norm (weights and
// gradient), activation checkpoints at the L+1 layer boundaries, or with
// `host_checkpoints` one boundary per slot plus the head's input; all in the
// compute precision; with offload.device_embedding_optimizer, the
// embedding's optimizer state too (and the device-resident layers').
int64_t WindowedArenaBytes(const JobConfig& config, int window,
                           bool host_checkpoints = false);
// Each buffer in the arena starts on a 64-byte boundary: `bytes` rounded up.
int64_t ArenaAlignedBytes(int64_t bytes);
// The fp32 arrays a buffer updated on the device holds beside its weights
// and gradient (core/optim/device_adamw.h): exp_avg, exp_avg_sq, the gradient
// accumulator, and in bf16/fp16 the master.
int DeviceOptimizerArrays(Precision precision);
// offload.device_embedding_optimizer: the embedding's arrays (0 when off).
int64_t DeviceEmbeddingOptimizerBytes(const JobConfig& config);
// offload.device_resident_layers, for STRONGHOLD (0 otherwise): how many
// block layers (0..K-1) stay on the device, and their bytes there (weights
// and gradient in the compute precision, the optimizer's arrays). The
// window's slots rotate through the other L - K layers.
int DeviceResidentLayers(const JobConfig& config);
int64_t DeviceResidentLayersBytes(const JobConfig& config);
// Whether the windowed methods keep the activation checkpoints in host
// memory: only when a window of one layer does not fit `device_budget`
// (> 0) with them on the device. The engine then copies each layer's input
// to the host in forward and back in backward, with the layer's weights.
bool CheckpointsOnHost(const JobConfig& config, int64_t device_budget);
// The smallest device budget a windowed method can train with (a window of
// one, checkpoints on the host).
int64_t SmallestDeviceBudget(const JobConfig& config);
// Compute working memory outside the arena: one layer's forward+backward
// working set and the logits of one micro-batch.
int64_t WorkingBytes(const JobConfig& config);
// The largest window whose arena plus working memory fits `device_budget`
// (capped at the number of layers); 0 if not even a window of 1 fits.
int MaxWindow(const JobConfig& config, int64_t device_budget);

// Bytes of activations one micro-batch keeps per layer boundary and while
// one layer runs (forward + backward working set), in the compute precision
// (fp32, or 2 bytes per element in bf16/fp16).
int64_t BoundaryActivationBytes(const JobConfig& config);
int64_t LayerWorkingBytes(const JobConfig& config);

// How many of the last block layers keep their activations for backward
// (STRONGHOLD; L2L always recomputes, RESIDENT never does): an explicit
// offload.kept_activation_layers as given (-1 = none), 0 = as many as fit in
// `free_device_bytes` (what the device budget leaves beside the window's
// arena and working memory; < 0 = unlimited), at LayerWorkingBytes each.
int KeptActivationLayers(const JobConfig& config, int64_t free_device_bytes);
// The same for a device budget alone (no host bound), beside the arena of
// `window` with the checkpoints where CheckpointsOnHost puts them; a budget
// <= 0 or INT64_MAX is unlimited. (SettleWindow's rule; tools compare with
// it.)
int KeptActivationLayersForDevice(const JobConfig& config, int window,
                                  int64_t device_budget);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_WINDOW_H_
