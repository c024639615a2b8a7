// The windowed offload engine: runs one training step (forward and backward
// of every micro-batch, gradient hand-off and CPU optimizer) with a window of
// W transformer layers on the compute device and every layer's training
// state in host memory. See docs/engine.md for the schedule, drawn as a
// timeline, and algorithm.md §2 for its origin.
//
// Per micro-batch, with layers i = 0..L-1 and slots for W+1 layers:
//   forward   wait for layer i's H2D; prefetch layer i+W; x_{i+1} =
//   block_i(x_i)
//             without autograd, keeping only x_i (activation checkpoint);
//             release layer i's slot unless it is one of the last W.
//   head      loss of x_L with autograd (final LayerNorm + tied LM head).
//   backward  wait for layer i; prefetch layer i-W; recompute block_i from x_i
//             with autograd and run its backward; copy the layer's gradient
//             to the host after an event on the compute queue; the slot is
//             free only when compute and that copy are both done; a CPU
//             worker adds the gradient into the host buffer and, on the last
//             micro-batch, runs the layer's AdamW step while the device
//             continues backward on earlier layers.
// The embedding and final LayerNorm stay on the device; their updated
// weights are copied in at the start of each step (with
// offload.device_embedding_optimizer the embedding is updated there instead,
// core/optim/device_adamw.h). With offload.device_resident_layers = K, block
// layers 0..K-1 stay on the device too, updated there, and the window's slots
// rotate through the others.
//
// Global-norm clipping needs every gradient before any update; with
// clip_norm > 0 the updates are deferred until backward ends, then run in
// forward order so the next step's forward waits only for the layer it needs
// (docs/engine.md measures what that costs). Without clipping, each layer is
// updated as soon as its gradient lands.
//
// L2L is the same loop with one slot and synchronous copies.
//
// Mixed precision (bf16, fp16): the device holds weights, gradients and
// activations in the compute precision; the host keeps fp32 masters, moments
// and gradient accumulator, and a working copy in the compute precision that
// the optimizer writes and H2D sends. Under fp16 the loss is multiplied by a
// dynamic loss scale, and the updates are deferred like clipping's, so an
// overflow anywhere skips the whole step (core/engine/loss_scale.h).
//
// Thread safety: one thread calls Step(); a CPU worker thread and the
// optimizer's pool run alongside.
#ifndef STRONGHOLD_CORE_ENGINE_ENGINE_H_
#define STRONGHOLD_CORE_ENGINE_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/device/device.h"
#include "core/device/timeline.h"
#include "core/engine/host_buffer.h"
#include "core/engine/loss_scale.h"
#include "core/engine/step_metrics.h"
#include "core/engine/step_policy.h"  // AdamWHyper, ClipFactor, NonFiniteGradient
#include "core/model/gpt_layout.h"
#include "core/optim/fused_adamw.h"
#include "core/plan/execution_plan.h"
#include "core/plan/host_ledger.h"
#include "core/plan/job_config.h"

namespace stronghold::storage {
class SpillStreamer;
}  // namespace stronghold::storage

namespace stronghold::core {

class Communicator;

// Fills inputs/targets [micro_batch, seq_len] for micro-batch `index` of a
// step. An error (CANCELLED to cancel the step, or why the data could not be
// read) ends the step: Step returns it.
using BatchSource =
    std::function<absl::Status(int index, int64_t* inputs, int64_t* targets)>;

class WindowedEngine {
 public:
  // Allocates every device buffer (slots, embedding, final norm, activation
  // checkpoints) from `device` and the host staging buffers, as `plan` (an
  // engine plan: window and slots >= 1, core/plan/execution_plan.h) says;
  // `buffers` are embedding, layers..., final_norm (ModelLayout order).
  // RESOURCE_EXHAUSTED when the device budget is too small. No exception
  // leaves Create, Step or Drain: each becomes a status with context
  // (core/util/exception_status.h), and a device error (Device::status())
  // fails the Step or Drain that finds it. `state` (not
  // owned, required) is the loss scale and AdamW's step count, which Step
  // reads and advances; it outlives the engine (an automatic-window rebuild
  // or a checkpoint keeps it). `spill` (not
  // owned; needed if any buffer has a spill_item) holds the moments spilled
  // to the NVMe tier: each step stages them in update order ahead of the
  // CPU optimizer and writes them back after each update. `ledger` (not
  // owned; optional) is charged the host memory the engine allocates
  // (staging, host activation checkpoints, speculative backups, the NVMe
  // read-ahead ring), each to its planned buffer, and released when the
  // engine goes.
  //
  // `comm` (not owned; null or one rank: no data parallelism) connects the
  // N ranks of a data-parallel job (core/dist/communicator.h). Then every
  // buffer holds this rank's slice (HostBuffer::shard, cut by
  // core/plan/shard.h in `optimizer`'s chunks of the whole buffer), the
  // device holds whole (padded) layers: each layer's gradient is
  // reduce-scattered on the device as backward makes it and only the owned
  // slice goes to the host, where the CPU optimizer updates it; a fetch
  // sends the owned slice and all-gathers the layer on the device before
  // compute reads it. Rank r computes the step's global micro-batches
  // m * N + r (the index `batches` is asked for), the loss is scaled by
  // 1 / (N * M), the global norm and the reported loss are summed in
  // global order, so every rank takes the same decisions (clip, skip, roll
  // back) and N ranks train as one does. Collectives are issued by the
  // thread that calls Step(), in an order fixed by the schedule.
  // FAILED_PRECONDITION for the device-side optimizer
  // (offload.device_embedding_optimizer, offload.device_resident_layers)
  // with N > 1.
  static absl::StatusOr<std::unique_ptr<WindowedEngine>> Create(
      const JobConfig& config, const ExecutionPlan& plan, Device* device,
      FusedAdamW* optimizer, std::vector<HostBuffer> buffers,
      LossScaleState* state, Timeline* timeline,
      storage::SpillStreamer* spill = nullptr, HostLedger* ledger = nullptr,
      Communicator* comm = nullptr);
  ~WindowedEngine();

  // One optimizer step: every micro-batch's forward and backward, then the
  // AdamW updates (some may still be running when Step returns; the next
  // Step, Drain() and the destructor wait for them). Fills the StepMetrics
  // fields marked "engine" (core/engine/step_metrics.h); the others stay 0.
  absl::StatusOr<StepMetrics> Step(int64_t step, const BatchSource& batches);

  // The next Step measures each layer's forward with the compute queue
  // drained after it (on a GPU the host would otherwise time only the
  // kernel launches) and reports the median layer as layer_forward_s, which
  // a first layer's one-off costs (kernel loading, library set-up) do not
  // move. For the automatic window's profiling step; costs one host wait
  // per layer in that step.
  void ProfileNextStep();

  // Waits for every queued update (and write-back to the NVMe tier): host
  // masters and spilled moments are then current (the state of the buffers
  // updated on the device, core/optim/device_adamw.h, is copied back, and
  // copied to the device again at the next Step, so the caller may also write
  // host state). The first I/O error of the NVMe tier, if any (it also fails
  // the Step that met it).
  absl::Status Drain();
  // Each Step plans the next one's reads from the NVMe tier and starts them
  // (core/engine/tier_reader.h). Call this (after Drain) before writing the
  // tier outside the pipeline (a restore, fresh working copies): it waits for
  // those reads and forgets them.
  void StopReadingAhead();

  // Spans that ended before this time belong to earlier steps: the start of
  // the previous step's deferred updates (or its end, without clipping).
  int64_t trace_cut_ns() const;

  // Create() allocates exactly WindowedArenaBytes(config, plan.window,
  // plan.host_checkpoints) of device memory (core/plan/planner.h).
  int window() const { return window_; }

 private:
  class Impl;
  WindowedEngine(std::unique_ptr<Impl> impl, int window);
  std::unique_ptr<Impl> impl_;
  int window_;
  // Set when a Step threw: every later Step fails with it (Drain still
  // waits for the queued work).
  absl::Status broken_;
};

// Converts `count` fp32 values to the compute precision `precision` (bf16 or
// fp16, rounded to nearest even like the optimizer's working copy).
void ToComputePrecision(const float* src, int64_t count, Precision precision,
                        void* dst);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_ENGINE_ENGINE_H_
