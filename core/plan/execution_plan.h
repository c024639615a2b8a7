// How one job runs on one node: every setting the run needs, resolved once
// from what the user asked (JobConfig, whose offload section holds only the
// request: 0 = automatic, -1 = none) and the node's budgets, together with
// the memory table that shows it fits. PlanExecution() (core/plan/planner.h)
// is the only place the rules live; the job manager computes a plan once per
// run and stores it in the job record, and the trainer and the engine take
// only the plan, re-deriving nothing.
#ifndef STRONGHOLD_CORE_PLAN_EXECUTION_PLAN_H_
#define STRONGHOLD_CORE_PLAN_EXECUTION_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/plan/job_config.h"

namespace stronghold::core {

inline constexpr char kTierDevice[] = "device";
inline constexpr char kTierPinned[] = "pinned";
inline constexpr char kTierHost[] = "host";
inline constexpr char kTierSsd[] = "ssd";

struct PlannedBuffer {
  std::string name;  // e.g. "host.weights.fp32"
  std::string tier;  // kTier*
  int64_t bytes = 0;
  std::string shape;  // e.g. "[2 layers] x 49,408 fp32"
};

struct ExecutionPlan {
  // ---- How the job runs (the trainer and the engine read these) ----
  OffloadMethod method = OffloadMethod::kResident;
  // RESIDENT in fp32 on the host device: plain autograd over the whole model
  // in host tensors, the reference the engine is checked against bit for
  // bit. Every other job runs the windowed engine: RESIDENT elsewhere (a GPU,
  // or bf16/fp16) as a window of every layer.
  bool reference = false;
  // The engine's window: layers fetched ahead of compute (RESIDENT: L, L2L:
  // 1). Device slots of one layer (weights and gradient) each: `slots`.
  int window = 0;
  int slots = 0;
  // offload.window was 0 (STRONGHOLD): `window` is the largest that fits,
  // and the trainer profiles step 1 with it and settles on the smallest that
  // hides the copies (SettleWindow in core/plan/planner.h).
  bool automatic_window = false;
  // The activation checkpoints (each layer's input) live in host memory:
  // a window of one does not fit the device budget with them there.
  bool host_checkpoints = false;
  // STRONGHOLD: the last N block layers keep their autograd activations from
  // forward to backward instead of recomputing (RESIDENT keeps every layer's,
  // L2L none).
  int kept_activation_layers = 0;
  // The kept count was automatic and only the device budget bounds it (a
  // GPU): a settled smaller window leaves room for more, so SettleWindow
  // resolves it again. On the host device host memory bounds it too and the
  // planned count stands.
  bool kept_follows_window = false;
  // Block layers 0 .. ssd_layers-1 keep their Adam moments (and in
  // bf16/fp16 their fp32 masters, SsdHoldsMasters) on the NVMe tier,
  // streamed through kSsdStagingSlots host slots; layers 0 ..
  // ssd_weight_layers-1 keep what H2D sends there too (only when every
  // layer's optimizer state there was not enough), read ahead of each fetch.
  int ssd_layers = 0;
  int ssd_weight_layers = 0;
  // The spilled layers' fp32 gradient accumulators are one layer's buffer
  // (host.grads.spilled.fp32), not one each: the schedule consumes each
  // gradient in the task that lands it (one micro-batch per rank and step,
  // updates not deferred: SsdGradsTransient in core/plan/ssd_placement.h).
  bool ssd_grads_transient = false;
  // STRONGHOLD: block layers 0 .. N-1 stay on the device with their
  // optimizer state, updated there; the window rotates through the others.
  int device_resident_layers = 0;
  // The windowed methods: the embedding's AdamW state lives and runs on the
  // device.
  bool device_embedding_optimizer = false;
  // Updates run as gradients land, undone and redone if the step turns out
  // clipped or overflowed (asked for, and updates would otherwise wait for
  // the global norm: clipping or fp16).
  bool speculative_updates = false;

  // ---- Budgets and memory ----
  std::string device;  // "cpu" or "cuda:N"
  int64_t budget_device_bytes =
      0;  // the job's, within the node's (0 = unlimited)
  int64_t budget_host_bytes = 0;  // likewise
  int64_t parameters = 0;
  int64_t parameters_per_layer = 0;
  double model_flops_per_step = 0.0;
  // ---- Data parallelism (docs/distributed.md) ----
  // Ranks of the job (distributed.world_size); the buffers are one rank's.
  int world_size = 1;
  // Elements of the host training state (masters, gradient accumulator,
  // moments) the busiest rank holds: its slices of every buffer in the
  // optimizer's chunks (core/plan/shard.h), `parameters` with one rank; and
  // of one block layer.
  int64_t rank_parameters = 0;
  int64_t rank_parameters_per_layer = 0;
  // Bytes one rank copies device -> host per step: each of its micro-batches'
  // gradients (its slices of them) and, with host checkpoints, the activation
  // checkpoints. StepMetrics::d2h_bytes measures the same.
  int64_t d2h_bytes_per_step = 0;
  // Totals of `buffers` per tier.
  int64_t bytes_device = 0;
  int64_t bytes_pinned = 0;
  int64_t bytes_host = 0;
  int64_t bytes_ssd = 0;
  // Whether the buffers fit the budgets; if not, why, with the numbers.
  // A plan that does not fit is never run.
  bool fits = false;
  std::string reason;
  // Every buffer the job allocates, with its tier and bytes.
  std::vector<PlannedBuffer> buffers;

  // Whether the windowed engine runs the job (else the reference does).
  bool windowed() const { return !reference; }
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_EXECUTION_PLAN_H_
