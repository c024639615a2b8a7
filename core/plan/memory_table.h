// The memory table of a plan (ExecutionPlan::buffers): every buffer a job
// allocates, with its tier, bytes and shape, and the totals per tier. The
// planner (core/plan/planner.h) fills it from the settings it resolved: the
// windowed engine's buffers for its window and slots, the activations the
// last layers keep, or the reference's whole state on the device. The NVMe
// tier's share is core/plan/ssd_placement.h; whether it all fits is
// core/plan/fit.h.
#ifndef STRONGHOLD_CORE_PLAN_MEMORY_TABLE_H_
#define STRONGHOLD_CORE_PLAN_MEMORY_TABLE_H_

#include <cstdint>
#include <string>

#include "core/plan/execution_plan.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

// Appends a buffer to plan.buffers and adds its bytes to the total of its
// tier (kTier*), saturating (a saturated total never fits).
void AddBuffer(ExecutionPlan& plan, std::string name, const char* tier,
               int64_t bytes, std::string shape);

// Host memory the plan's buffers take: host and pinned, and on the host
// device (`device_is_host`) the device arena too.
int64_t HostNeedBytes(const ExecutionPlan& plan, bool device_is_host);

// The windowed engine's buffers for the plan's window, slots, checkpoint
// placement and options (device memory, and host memory pinned when `cuda`).
void AddWindowedBuffers(const JobConfig& config, ExecutionPlan& plan,
                        bool cuda);

// Spends what the budgets leave (after the window and the NVMe placement) on
// keeping the last layers' activations, or adds the explicitly asked ones
// (DecideFit then refuses them if they do not fit); sets
// plan.kept_activation_layers.
void PlanKeptActivations(const JobConfig& config, bool device_is_host,
                         ExecutionPlan& plan);

// The reference (RESIDENT): the whole training state on the compute device,
// and the full autograd graph of one micro-batch (no recomputation).
void AddReferenceBuffers(const JobConfig& config, ExecutionPlan& plan);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_MEMORY_TABLE_H_
