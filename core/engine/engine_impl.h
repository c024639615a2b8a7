// WindowedEngine::Impl, the engine behind core/engine/engine.h: its state
// and the phases of one step. Private to core/engine: nothing outside the
// package includes it (its .cc files include it; it is not in any target's
// public hdrs).
//
// Its methods are split by responsibility over the package's .cc files:
// - engine.cc: construction, Allocate(), Drain(), the public wrappers;
// - engine_step.cc: Step() and its phases, the step read top to bottom;
// - engine_passes.cc: Forward(), Backward(), HandOff();
// - engine_slots.cc: the window's slots (Fetch(), Ensure(), Release()), the
//   fetch order and the spilled state's staging;
// - engine_activations.cc: the activation checkpoints (device or host) and
//   the kept layers;
// - engine_device_updates.cc: the buffers updated on the device, update
//   orders, roll-back;
// - engine_shards.cc: data parallelism's collectives and the figures summed
//   over the ranks.
// The step's policy (defer, roll back, skip, clip) is
// core/engine/step_policy.h.
#ifndef STRONGHOLD_CORE_ENGINE_ENGINE_IMPL_H_
#define STRONGHOLD_CORE_ENGINE_ENGINE_IMPL_H_

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/device/device.h"
#include "core/device/timeline.h"
#include "core/dist/communicator.h"
#include "core/engine/engine.h"
#include "core/engine/grad_worker.h"
#include "core/engine/host_buffer.h"
#include "core/engine/step_policy.h"
#include "core/engine/tier_reader.h"
#include "core/optim/device_adamw.h"
#include "core/plan/execution_plan.h"
#include "core/plan/host_ledger.h"
#include "core/plan/job_config.h"
#include "storage/spill_streamer.h"

namespace stronghold::core {
namespace engine_internal {

// What follows a layer's gradient accumulation on the host in a micro-batch.
enum class GradTail {
  kNone,     // more micro-batches to come
  kUpdate,   // the last one: the layer's AdamW step right away
  kMeasure,  // the last one, updates deferred: measure it for the global norm
};

// Seconds since `start_ns` (Timeline::NowNs()).
inline double Since(int64_t start_ns) {
  return (Timeline::NowNs() - start_ns) / 1e9;
}

// The LibTorch dtype of the compute precision.
inline torch::ScalarType ComputeScalarType(Precision p) {
  switch (p) {
    case Precision::kBf16:
      return torch::kBFloat16;
    case Precision::kFp16:
      return torch::kHalf;
    default:
      return torch::kFloat32;
  }
}

// A device slot holding one block: its weights and its gradient.
struct Slot {
  void* param = nullptr;  // in the compute precision
  void* grad = nullptr;
  int buffer = -1;     // the buffer it holds, -1 when free
  Event h2d_done;      // its weights have arrived
  Event compute_done;  // the last compute that read it
  Event d2h_done;      // its gradient has left
  // Data parallelism: the layer's other slices have been all-gathered since
  // its own slice arrived (Ensure() gathers it before compute reads it).
  bool gathered = true;
};

// Layers kept_from_.. keep their autograd graph from forward to backward.
struct KeptLayer {
  torch::Tensor weights;  // the leaf over the slot's weights
  torch::Tensor input;    // x_i, the leaf whose gradient backward passes down
  torch::Tensor output;   // x_{i+1} with its graph
};

}  // namespace engine_internal

class WindowedEngine::Impl {
 public:
  Impl(const JobConfig& config, const ExecutionPlan& plan, Device* device,
       FusedAdamW* optimizer, std::vector<HostBuffer> buffers,
       LossScaleState* state, Timeline* timeline, storage::SpillStreamer* spill,
       HostLedger* ledger, Communicator* comm);
  ~Impl();

  absl::Status Allocate();  // engine.cc
  absl::StatusOr<StepMetrics> Step(int64_t step, const BatchSource& batches);
  absl::Status Drain();

  int64_t cut_ns() const { return cut_ns_; }
  void ProfileNextStep() { profile_ = true; }
  void StopReadingAhead();

 private:
  using GradTail = engine_internal::GradTail;
  using KeptLayer = engine_internal::KeptLayer;
  using Slot = engine_internal::Slot;

  int last() const { return static_cast<int>(buffers_.size()) - 1; }
  int num_buffers() const { return static_cast<int>(buffers_.size()); }
  bool OnDevice(int b) const {
    return !dev_opt_.empty() && dev_opt_[b].count > 0;
  }
  // What H2D sends for buffer b: the working copy, or the fp32 masters.
  const void* Source(int b) const {
    return buffers_[b].working != nullptr ? buffers_[b].working
                                          : buffers_[b].param;
  }

  // engine.cc
  absl::Status Charge(const char* name, int64_t bytes);

  // engine_shards.cc: data parallelism (comm_ of N > 1 ranks).
  // Elements of buffer b on the device: its padded length when sharded.
  int64_t DeviceCount(int b) const {
    return sharded_ ? buffers_[b].shard.padded : buffers_[b].layout.count;
  }
  // Where this rank's piece of buffer b starts on the device (elements).
  int64_t PieceOffset(int b) const {
    return sharded_ ? comm_->rank() * buffers_[b].shard.slice : 0;
  }
  // Elements of a staging buffer (device shard, host) for buffer b's
  // gradient: the owned slice, or in ordered mode every rank's piece of it.
  int64_t StagingCount(int b) const;
  // Refuses what data parallelism does not support, and checks the shards.
  absl::Status CheckShards() const;
  absl::Status AllocateShards();  // the device shards, statistics, losses
  // All-gathers buffer b's slices into `param` (its whole device buffer),
  // once its own slice has arrived there (H2D queue) and before compute
  // reads it. A failure is kept in comm_error_.
  void GatherLayer(void* param, int b, Event arrived);
  // Reduces buffer b's device gradient `device_grad` over the ranks into
  // shard_grad_[staging] (ordered mode: every rank's piece of it, in rank
  // order, for the host to add). Returns what D2H copies from.
  const void* ShardGradient(int b, const void* device_grad, int staging);
  // The whole buffers' statistics from every rank's per-chunk statistics,
  // added in global chunk order (the same for any N).
  absl::Status CombineShardStats(std::vector<StepStats>* grads);
  // The micro-batches' losses of every rank, added in global order.
  absl::StatusOr<double> JobLoss(int micro_batches);

  // engine_step.cc: the phases of Step(), in order.
  bool BeginStep(int64_t step, int micro_batches, double scale,
                 int64_t adam_step);
  void SendEmbeddingAndNorm();
  void QueueBackups();
  absl::StatusOr<double> RunMicroBatches(const BatchSource& batches,
                                         int micro_batches,
                                         const torch::TensorOptions& dev,
                                         bool profile, bool defer,
                                         double scale);
  absl::StatusOr<std::vector<StepStats>> GatherGradients(bool defer,
                                                         double scale);
  absl::Status FailStep(int64_t step, const StepDecision& decision,
                        const std::vector<StepStats>& grads);
  void UpdateHost(const StepDecision& decision, bool defer,
                  const AdamWStep& hyper);
  void FinishStats(double loss_sum, int micro_batches);
  void PlanNextFetches(int micro_batches);

  // engine_device_updates.cc
  // Buffer b's AdamW on the device (core/optim/device_adamw.h): the fp32 arrays
  // beside its weights and gradient there; in fp32 the weights are the
  // master. The embedding (offload.device_embedding_optimizer) and block
  // layers 0..K-1 (offload.device_resident_layers).
  absl::Status AllocateDeviceOptimizer(int b, void* weights);
  // The state (master, moments, working copy) of the buffers updated on the
  // device: to it (`to_device`) before the first step and after the host
  // state was read or written (Drain); from it, once its updates are done,
  // so that the host state is current (checkpoints, Weights()).
  void CopyDeviceState(bool to_device);
  // The step's AdamW of the buffers updated on the device (a finite step).
  void UpdateOnDevice(const AdamWStep& hyper);
  // The order in which the next step's forward needs the buffers: the
  // embedding and the final norm (both copied at its start), then the
  // block layers. Updates that run after backward (deferred, or redone
  // after a roll-back) are queued in it, so the forward of layer i waits
  // for the updates of the buffers before it and no others. (Buffer order
  // would put the final norm last: the next step would wait for every
  // update before its first layer, as it did until 2026-11-27.)
  // The host-updated buffers in that order (update_order_), and in the
  // order backward updates them, the block layers down, the embedding, the
  // final norm (backup_order_: speculative backups). Fixed once Allocate()
  // knows which buffers the device updates.
  void PlanUpdateOrders();
  // Queues buffer b's restore from its backup and, with `redo`, its update
  // again with those hyper-parameters; the next forward waits for it.
  void RollBack(int b, const AdamWStep* redo);
  // The speculative updates' backups in host memory (Allocate()).
  absl::Status AllocateBackups();

  // engine_slots.cc
  // The buffers Fetch() copies to the device this step, in order: per
  // micro-batch, forward 0..L-1, then backward from below the layers that
  // stay from forward (the last W) down to 0.
  std::vector<int> FetchOrder(int micro_batches) const;
  // Starts reading the spilled moments in the order the updates will want
  // them (the streamer's bounded slots limit how far ahead).
  void StageSpilled(bool forward);
  // Block layer i is buffer i + 1 (buffer 0 is the embedding).
  Slot* Resident(int layer);
  // Blocks until the pending AdamW update of buffer b (if any) is done.
  void WaitForUpdate(int b);
  // Issues the H2D copy of block `layer` into its slot. Layer i always uses
  // slot i mod slots: the window keeps layers i..i+W resident going up and
  // i..i-W going down, W + 1 consecutive layers, so that slot is free when
  // the layer is fetched, and a layer whose activations were kept finds its
  // weights at the addresses its autograd graph saved.
  void Fetch(int layer, bool with_input = false);
  // Fetches block layers first..last (those that exist) that are not
  // resident yet, in order, up to the first whose update is still running
  // (`first` is the lowest layer not fetched yet, so the order is Fetch's).
  // Forward prefetches this way so that compute is held up only by the
  // layer it needs now: with updates deferred to after backward, the
  // optimizer is still working through the layers when the next forward
  // starts, and Ensure() waits for the layer at hand alone. When nothing
  // is pending (updates overlapped backward) it prefetches the whole window.
  void PrefetchReady(int first, int last);
  // Makes compute wait for block `layer`'s weights (fetching it if needed).
  Slot* Ensure(int layer, bool with_input = false);
  void Release(Slot* slot);
  torch::Tensor Weights(const Slot& slot, const torch::TensorOptions& dev);

  // engine_activations.cc
  // Where the input of block layer i (i = L: of the head) is on the device.
  // With the checkpoints on the host, the device holds one boundary per
  // slot, layer i's in its slot's (i mod slots), and the head's apart.
  int BoundaryIndex(int i) const {
    if (!host_ckpt_mode_) return i;
    return i == layers_ ? static_cast<int>(slots_.size())
                        : i % static_cast<int>(slots_.size());
  }
  // Allocates the device checkpoints and, with host_ckpt_mode_, the host's.
  absl::Status AllocateCheckpoints();
  torch::Tensor Checkpoint(int i, const torch::TensorOptions& dev);
  // Host checkpoints, forward: before compute overwrites layer i's device
  // boundary, the copy of its previous content to the host must be done.
  void BeforeWriting(int i);
  // ... and after compute wrote it, it goes to the host (the head's input
  // stays on the device until backward).
  void AfterWriting(int i);
  // Host checkpoints, backward: queues the H2D copy of block `layer`'s input
  // (buffer b) back to its device boundary.
  void RestoreInput(int layer, int b);

  // engine_passes.cc
  // Stages the spilled optimizer state (backward order) at layer `stage_at`
  // (< 0: not).
  void Forward(const torch::Tensor& tokens, const torch::TensorOptions& dev,
               bool profile, int stage_at);
  // Copies a device gradient to host staging after the compute that made it,
  // and queues its accumulation (and update) on the CPU worker.
  Event HandOff(int b, const void* device_grad, int staging, bool first,
                GradTail tail);
  double Backward(const torch::Tensor& tokens, const torch::Tensor& labels,
                  const torch::TensorOptions& dev, bool first, GradTail tail,
                  int micro_batches, double loss_scale);

  const JobConfig config_;
  HostLedger* const ledger_;  // not owned; null: host memory not accounted
  std::vector<std::pair<const char*, int64_t>> charged_;  // to release
  const int window_;
  const int slots_count_;  // ExecutionPlan::slots
  const bool l2l_;
  const int layers_;
  const Precision precision_;
  const int64_t elem_;  // bytes of one device element (ComputeElementBytes)
  Device* const device_;
  FusedAdamW* const optimizer_;
  Timeline* const timeline_;
  storage::SpillStreamer* const spill_;  // null: nothing spilled
  // What H2D sends from the NVMe tier, read ahead (core/engine/tier_reader.h).
  // A failed read is kept in tier_error_, which fails the step (the layer then
  // computes with undefined weights, but the job ends with the error).
  std::unique_ptr<TierReader> tier_;
  // Whether buffer b has no update pending: its newest data is where the
  // tier reader reads it.
  const std::function<bool(int)> updated_ = [this](int b) {
    return update_task_[b] == 0 || worker_.Completed(update_task_[b]);
  };
  bool tier_planned_ = false;  // the next Step's fetch order is planned already
  TierReader::Stats tier_seen_;  // tier_->stats() at the last step's end
  storage::SpillStreamer::Traffic traffic_seen_;  // spill_->traffic() likewise
  absl::Status tier_error_;
  std::vector<HostBuffer> buffers_;  // embedding, layers..., final_norm
  LossScaleState* const state_;      // not owned

  // Data parallelism (engine_shards.cc). comm_ null or of one rank: none.
  Communicator* const comm_;  // not owned
  const bool sharded_;        // comm_ of N > 1 ranks
  const int world_;           // N (1 without comm_)
  const int rank_;
  // Device, one per staging buffer: the reduced slice of a gradient (ordered
  // mode: the N pieces), which D2H sends to the host.
  std::vector<void*> shard_grad_;
  std::vector<std::vector<StepStats>> chunk_stats_;  // per buffer, per chunk
  std::vector<double> chunk_mine_, chunk_all_;  // CombineShardStats' arrays
  std::vector<double> losses_, losses_all_;     // this step's micro-batches'
  absl::Status comm_error_;  // the first failed collective fails the step

  // Device memory, allocated once by Allocate().
  // Weights, gradients and activations are in the compute precision.
  std::vector<Slot> slots_;
  void* emb_param_ = nullptr;
  void* emb_grad_ = nullptr;
  void* fin_param_ = nullptr;
  void* fin_grad_ = nullptr;
  Event emb_d2h_, fin_d2h_;  // the last D2H copies of emb_grad_ and fin_grad_
  // Activation checkpoints [L+1, micro_batch, seq_len, hidden] on the
  // device, or with host_ckpt_mode_ in host_ckpt_ and one boundary per slot
  // plus the head's on the device.
  const bool host_ckpt_mode_;
  void* ckpt_ = nullptr;
  void* host_ckpt_ = nullptr;
  std::vector<Event>
      boundary_d2h_;  // each device boundary's last copy to the host
  // Block layers from kept_from_ on keep their activations (no recompute).
  int kept_from_;
  std::vector<KeptLayer> kept_;
  std::vector<void*> staging_;  // host, one per slot + embedding + final norm
  std::vector<uint64_t>
      staging_task_;  // last worker task reading each staging buffer

  // The worker task that updates each buffer (0: none yet).
  std::vector<uint64_t> update_task_;
  // Speculative updates (offload.speculative_updates): each buffer's param,
  // exp_avg, exp_avg_sq (and 16-bit working copy) as they were before this
  // step's update.
  const bool
      speculate_;  // SpeculativeUpdates(): every step's updates are speculative
  std::vector<std::unique_ptr<float[]>> backup_storage_;
  std::vector<std::unique_ptr<uint16_t[]>>
      backup_working_;  // bf16/fp16 working copies
  std::vector<ParamBuffer> backups_;
  int64_t epoch_ =
      0;  // speculative steps begun: a backup is saved once per epoch
  std::vector<int> update_order_;  // PlanUpdateOrders()
  std::vector<int> backup_order_;
  // offload.device_embedding_optimizer: buffer 0's AdamW runs on the device
  // (no worker task, backup or host copy each step).
  const bool emb_on_device_;
  // offload.device_resident_layers: block layers 0..K-1 stay on the device
  // (weights and gradient in resident_, never fetched or released) and are
  // updated there like the embedding.
  const int resident_layers_;
  std::vector<Slot> resident_;
  std::unique_ptr<DeviceAdamW>
      device_adamw_;  // null: every buffer is updated on the host
  std::vector<DeviceAdamWState>
      dev_opt_;             // per buffer; count 0: updated on the host
  bool dev_upload_ = true;  // the host's state is newer than the device's
  bool dev_dirty_ = false;  // the device's state is newer than the host's
  GradWorker worker_;
  bool profile_ = false;                    // ProfileNextStep
  std::vector<double> profiled_forward_s_;  // its layers' forward seconds

  int64_t step_ = 0;
  int64_t cut_ns_ = Timeline::NowNs();
  AdamWStep hyper_;
  StepMetrics stats_;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_ENGINE_ENGINE_IMPL_H_
