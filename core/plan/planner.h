// The planner: a pure function from a job's configuration (what the user
// asked) and the node's budgets to its execution plan (core/plan/
// execution_plan.h): how it runs, resolved once, and every buffer it will
// allocate, with its tier and bytes. Jobs that do not fit are refused with
// these numbers before anything is allocated; `strongholdctl plan` prints the
// same table. Every rule that turns a request into a setting ("L2L -> a
// window of 1, RESIDENT -> L, 0 -> automatic", where the activation
// checkpoints go, how many layers keep their activations, what spills to the
// NVMe tier) is here and nowhere else.
#ifndef STRONGHOLD_CORE_PLAN_PLANNER_H_
#define STRONGHOLD_CORE_PLAN_PLANNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/plan/execution_plan.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

struct NodeBudgets {
  std::string device = "cpu";     // "cpu" or "cuda:N"
  int64_t device_bytes = 0;       // compute-device memory budget
  int64_t host_bytes = 0;         // host RAM budget
  // Bytes the job may use in its NVMe tier directories (offload.ssd_dirs);
  // 0 = not checked here (the tier preallocates its files when the job
  // starts and fails then, with the bytes it needed).
  int64_t ssd_bytes = 0;
  // Whether the engine streams spilled state from the NVMe tier (it does:
  // ExecutionPlan::ssd_layers). False plans as if there were no such tier.
  bool ssd_streaming = true;
  // Tests and benchmarks only (-1 = as the host budget requires): place
  // exactly this many block layers' optimizer state (and what H2D sends of
  // force_ssd_weight_layers of them) on the NVMe tier, whatever the budget,
  // with the staging that needs, so that the plan's table and its settings
  // still agree. Honoured wherever a spill is possible (the trainer refuses
  // it where it is not: no ssd_dirs, speculative updates, RESIDENT).
  int force_ssd_layers = -1;
  int force_ssd_weight_layers = -1;
};


// The job's budgets override the node's where set (and may only lower them).
//
// NVMe placement (windowed methods, with offload.ssd_dirs and
// node.ssd_streaming): when the host state exceeds the host budget, the
// optimizer state of as many block layers as needed moves to the ssd tier,
// from layer 0 up (backward updates them last, so their reads have the most
// time to arrive), plus kSsdStagingSlots layers' worth of host staging. That
// state is the Adam moments and, in bf16/fp16, the fp32 masters: only the
// CPU optimizer touches them, once per step. What the device reads for
// every micro-batch's forward and backward (the bf16/fp16 working copy, or
// in fp32 the masters themselves) stays in host memory while that is
// enough; if the state of every layer is not, that too goes to the tier
// for as few block layers as needed, from layer 0 up (ssd_weight_layers),
// read ahead of each fetch. If that is not enough either, the job does not
// fit.
//
// Which engine: RESIDENT in fp32 on the host device is the plain-autograd
// reference (ExecutionPlan::reference); every other job runs the windowed
// engine, RESIDENT as a window of every layer (on a GPU, or in bf16/fp16).
ExecutionPlan PlanExecution(const JobConfig& config, const NodeBudgets& node);

// The plan of an automatic window (ExecutionPlan::automatic_window) settled
// on `window` (1 .. plan.window) after profiling: the window and its slots,
// and the kept activation layers resolved again for it where they follow the
// window (ExecutionPlan::kept_follows_window). The memory table stays the
// largest window's, which bounds the settled one's.
ExecutionPlan SettleWindow(const JobConfig& config, const ExecutionPlan& plan, int window);

// Whether a spilled layer's fp32 masters go to the NVMe tier with its
// moments: in bf16/fp16, where H2D sends the working copy and only the
// optimizer, checkpoints and Weights() read the masters; not in fp32, where
// the masters are what H2D sends every micro-batch.
inline bool SsdHoldsMasters(Precision precision) { return precision != Precision::kFp32; }

// Host staging slots the NVMe tier uses (one layer's spilled state each): the next
// layer's read, this layer's update and the last layer's write-back overlap.
inline constexpr int kSsdStagingSlots = 3;

// The largest model.layers (all else as in `config`) whose plan fits `node`
// and the job's budgets; 0 if not even one layer fits.
int MaxTrainableLayers(const JobConfig& config, const NodeBudgets& node);

// Device slots the windowed engine allocates for `window` (L2L: one).
int WindowSlots(const JobConfig& config, int window);
// Host buffers the engine reads what H2D sends from the NVMe tier into,
// ahead of use (core/engine/tier_reader.h): one per slot and one more, so that a
// read can start while the slots' copies are still queued.
int TierReadRing(const JobConfig& config, int window);
// Device bytes the windowed engine allocates (its arena): slots (weights and
// gradient of one layer each), embedding and final norm (weights and
// gradient), activation checkpoints at the L+1 layer boundaries, or with
// `host_checkpoints` one boundary per slot plus the head's input; all in the
// compute precision; with offload.device_embedding_optimizer, the
// embedding's optimizer state too (and the device-resident layers').
int64_t WindowedArenaBytes(const JobConfig& config, int window, bool host_checkpoints = false);
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
int KeptActivationLayersForDevice(const JobConfig& config, int window, int64_t device_budget);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_PLANNER_H_
