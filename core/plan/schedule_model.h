// The schedule model: a discrete-event simulation of the windowed engine's
// own schedule (docs/engine.md, core/engine/engine_step.cc) over five
// resources, the compute stream, the H2D and D2H copy queues, the CPU
// optimizer pool (one task at a time, as GradWorker hands them over) and
// the NVMe queue, with per-layer costs from a HardwareProfile and the sizes
// and settings of an ExecutionPlan (window, slots, kept activations,
// device-resident layers, the embedding's optimizer, speculative updates,
// checkpoints on the host, NVMe placement). It predicts the step time and
// says which resource bounds it, next to each resource's floor
// (algorithm.md §5). docs/prediction.md explains the model and its limits.
//
// What it simulates, per micro-batch: the window's fill and one prefetch
// per layer (a fetch waits for its slot's last compute and D2H, and the
// host waits for the layer's pending update first), forward with the last
// W layers kept in their slots, the head, backward with recompute for the
// layers that do not keep their activations, each gradient's D2H after its
// compute and its CPU task after the D2H (accumulate; on the last
// micro-batch also measure, or update, or backup + update), the staging
// buffer's reuse wait; after the last micro-batch the host waits for every
// gradient, then the deferred updates are queued in forward order (or the
// final norm last: runs A and B) and the device's updates run on the
// compute stream. Several steps are simulated so that the updates of one
// step overlap the next step's forward as they do in the engine; the last
// step's time is the prediction.
//
// On the host device (HardwareProfile::device_is_host) compute, copies and
// the optimizer share the same cores: the model serialises them on one
// timeline. RESIDENT on the host device (the plain-autograd reference) is
// forward, backward and one AdamW over the whole model, serialised.
//
// Plain C++ (no LibTorch).
#ifndef STRONGHOLD_CORE_PLAN_SCHEDULE_MODEL_H_
#define STRONGHOLD_CORE_PLAN_SCHEDULE_MODEL_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/plan/execution_plan.h"
#include "core/plan/hardware_profile.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

// How the engine being modelled differed from today's (to predict recorded
// runs of older engines and of the seed's baselines). Defaults: today's.
struct ScheduleOptions {
  // Run A (engine before a7981fd): one thread added each gradient into the
  // host accumulator (reading the staging and the accumulator, writing the
  // accumulator) and a second pass read it for the global norm, at
  // HardwareProfile::cpu_single_thread_gbps. Default: the pool does both in
  // one pass at cpu_copy_gbps.
  bool single_thread_accumulation = false;
  // Runs A and B (before 2026-11-27 evening): the deferred updates were
  // queued with the final norm's last, and the next step waited for it
  // before any compute, i.e. for every update. Default: embedding, final
  // norm, layers 0, 1, ...; forward waits only for the layer at hand.
  bool final_norm_updated_last = false;
  // The seed's L2L baseline: copies through pageable memory
  // (pageable_copy_gbps), and the host waits for each layer's CPU update
  // before it goes on.
  bool pageable_copies = false;
  bool synchronous_optimizer = false;
  // Speculative updates: the fraction of steps that turn out clipped (or,
  // in fp16, overflowed) and are restored and redone. The prediction mixes
  // the two steps' times in this proportion. In [0, 1].
  double clipped_step_fraction = 0;
  // Steps simulated (>= 2); the last one's time is the prediction.
  int steps = 3;
};

enum class Bottleneck { kCompute, kPcie, kCpuOptimizer, kNvme };
// "compute", "pcie", "cpu_optimizer", "nvme".
const char* BottleneckName(Bottleneck bottleneck);

// Seconds per step for each resource.
struct ResourceSeconds {
  double compute_s = 0;
  double pcie_s = 0;  // busy: H2D + D2H; floors: the slower direction
  double h2d_s = 0;
  double d2h_s = 0;
  double cpu_optimizer_s = 0;
  double nvme_s = 0;
};

struct StepPrediction {
  double step_s = 0;
  double samples_per_s = 0;
  double tokens_per_s = 0;
  double model_tflops = 0;  // Megatron's model FLOPs per step / step_s
  double mfu = 0;           // model_tflops / the device's dense peak
  // Time each resource is busy in one step.
  ResourceSeconds busy;
  // Each resource's floor (algorithm.md §5): its work at its rate, with no
  // dependency; the step can be no faster than the largest (floor_s).
  ResourceSeconds floors;
  double floor_s = 0;
  // Where the compute stream's time went: compute itself, and the waits it
  // spent blocked on each other resource (on the host device: each
  // resource's share of the one timeline).
  ResourceSeconds critical;
  Bottleneck bottleneck = Bottleneck::kCompute;
  // The per-layer costs used.
  double layer_forward_s = 0;
  double layer_backward_s = 0;
  bool layer_cost_measured = false;
};

// Predicts one steady-state step of `plan` (as PlanExecution or
// SettleWindow made it for `config`) on `profile`. INVALID_ARGUMENT for a
// plan that does not fit or options out of range; NOT_FOUND when the
// profile has no compute figures for the job's precision.
absl::StatusOr<StepPrediction> PredictStep(const JobConfig& config,
                                           const ExecutionPlan& plan,
                                           const HardwareProfile& profile,
                                           const ScheduleOptions& options = {});

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_SCHEDULE_MODEL_H_
