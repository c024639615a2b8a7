// The NVMe tier's share of a plan (windowed methods, with offload.ssd_dirs
// and node.ssd_streaming): when the host state exceeds the host budget, the
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
// fit (core/plan/fit.h says so).
#ifndef STRONGHOLD_CORE_PLAN_SSD_PLACEMENT_H_
#define STRONGHOLD_CORE_PLAN_SSD_PLACEMENT_H_

#include <cstdint>

#include "core/plan/execution_plan.h"
#include "core/plan/job_config.h"
#include "core/plan/node_budgets.h"

namespace stronghold::core {

// Whether a spilled layer's fp32 masters go to the NVMe tier with its
// moments: in bf16/fp16, where H2D sends the working copy and only the
// optimizer, checkpoints and Weights() read the masters; not in fp32, where
// the masters are what H2D sends every micro-batch.
inline bool SsdHoldsMasters(Precision precision) {
  return precision != Precision::kFp32;
}

// Whether each spilled layer's gradient is consumed by its update in the
// worker task that lands it, so that one layer's fp32 accumulator serves
// every spilled layer (ExecutionPlan::ssd_grads_transient): one micro-batch
// per rank and step (nothing to accumulate across micro-batches) and
// updates that run as gradients land (no clipping, not fp16: those wait for
// the whole step's gradient). Speculative updates, which would also run as
// gradients land, are refused with the tier. Otherwise every spilled
// layer's accumulator stays in host memory (host.grads.fp32).
inline bool SsdGradsTransient(const TrainingConfig& t, int world_size) {
  return t.micro_batch > 0 && world_size > 0 &&
         t.batch / (int64_t{t.micro_batch} * world_size) == 1 &&
         !UpdatesNeedWholeGradient(t.clip_norm, t.precision);
}

// Host staging slots the NVMe tier uses (one layer's spilled state each): the
// next layer's read, this layer's update and the last layer's write-back
// overlap.
inline constexpr int kSsdStagingSlots = 3;

// Moves the optimizer state of as few block layers as needed from the
// plan's host buffers to the ssd tier (with their gradient accumulators
// shrunk to one layer's where SsdGradsTransient; and then, if every layer's is
// not enough, what H2D sends of as few layers as needed), setting
// plan.ssd_layers and plan.ssd_weight_layers; honours node.force_ssd_*.
// Leaves the plan alone if the host state fits or the tier is not
// available.
void PlaceOnSsd(const JobConfig& config, const NodeBudgets& node,
                ExecutionPlan& plan);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_SSD_PLACEMENT_H_
