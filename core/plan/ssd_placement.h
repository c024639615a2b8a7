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

// Host staging slots the NVMe tier uses (one layer's spilled state each): the
// next layer's read, this layer's update and the last layer's write-back
// overlap.
inline constexpr int kSsdStagingSlots = 3;

// Moves the optimizer state of as few block layers as needed from the
// plan's host buffers to the ssd tier (and then, if every layer's is not
// enough, what H2D sends of as few layers as needed), setting
// plan.ssd_layers and plan.ssd_weight_layers; honours node.force_ssd_*.
// Leaves the plan alone if the host state fits or the tier is not
// available.
void PlaceOnSsd(const JobConfig& config, const NodeBudgets& node,
                ExecutionPlan& plan);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_SSD_PLACEMENT_H_
