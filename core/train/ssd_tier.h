// The trainer's view of the NVMe tier (ExecutionPlan::ssd_layers > 0, the
// windowed engine): which buffers keep which state there, opening the tier
// with that state's initial values, and streaming it for checkpoints.
//
// Buffers are numbered in ModelLayout() order. Block layers 0 .. ssd_layers-1
// (buffers 1 .. ssd_layers) keep their Adam moments on the tier, and their
// fp32 masters too where the precision or ssd_weight_layers says so; in
// bf16/fp16, block layers 0 .. ssd_weight_layers-1 keep their 16-bit working
// copies there as well. The trainer allocates host memory for the rest, and
// hands streamer() to the engine, which streams the spilled state through
// kSsdStagingSlots host slots every step.
//
// Thread safety: called from the trainer's thread; streamer() itself is
// thread-safe (storage/spill_streamer.h).
#ifndef STRONGHOLD_CORE_TRAIN_SSD_TIER_H_
#define STRONGHOLD_CORE_TRAIN_SSD_TIER_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "core/checkpoint/checkpoint.h"
#include "core/model/gpt_layout.h"
#include "core/plan/execution_plan.h"
#include "core/plan/host_ledger.h"
#include "core/plan/job_config.h"
#include "core/plan/shard.h"
#include "core/train/trainer_options.h"
#include "storage/aligned_buffer.h"
#include "storage/block_device.h"
#include "storage/extent_store.h"
#include "storage/spill_streamer.h"

namespace stronghold::core {

class SsdTier {
 public:
  // Opens nothing (Open() does): until then only the predicates work.
  // `shards` (one per buffer; empty: one rank): a data-parallel rank's
  // items hold its slice of each buffer (core/plan/shard.h).
  SsdTier(const JobConfig& config, const ExecutionPlan& plan,
          const TrainerOptions& options, std::vector<BufferShard> shards = {});
  SsdTier(const SsdTier&) = delete;
  SsdTier& operator=(const SsdTier&) = delete;

  // INVALID_ARGUMENT when the plan's ssd_layers or ssd_weight_layers do not
  // fit the job (a plan not made by the planner, say).
  absl::Status CheckPlan() const;

  // Buffer i keeps its moments on the NVMe tier: block layers
  // 0 .. ssd_layers-1, i.e. buffers 1 .. ssd_layers.
  bool Spilled(int i) const;
  // And its fp32 master too, as the third array of its item: in bf16/fp16
  // always (core/plan/planner.h, SsdHoldsMasters), in fp32, where the masters
  // are what H2D sends, for block layers 0 .. ssd_weight_layers-1.
  bool MasterSpilled(int i) const;
  // And its 16-bit working copy too (ExecutionPlan::ssd_weight_layers), as
  // the fourth array of its item: not staged for the update (which writes
  // it), written back with the rest.
  bool WeightSpilled(int i) const;
  // Buffer i's gradient accumulator is the one layer-sized buffer that
  // every spilled layer shares (ExecutionPlan::ssd_grads_transient): the
  // schedule consumes each gradient in the task that lands it.
  bool GradTransient(int i) const {
    return Spilled(i) && plan_.ssd_grads_transient;
  }
  // The array of item i-1 that H2D sends (HostBuffer::sent_array): 3, the
  // working copy, where WeightSpilled(i); in fp32 2, the master, where
  // MasterSpilled(i); else -1.
  int SentArray(int i) const;

  // The spilled state's extents, staging and initial values: zero moments
  // and, for spilled masters, the initial weights (InitBuffer, as for host
  // masters). Working copies there are the trainer's to write before the
  // first step reads them (WriteWorking). OK and nothing done without
  // ssd_layers or when open already.
  // Its host staging is charged to `ledger` (not owned).
  absl::Status Open(HostLedger* ledger);
  // What the engine streams the spilled state through; null until Open()
  // and without ssd_layers.
  storage::SpillStreamer* streamer() const { return spill_.get(); }

  // Buffer i's fp32 master from the NVMe tier into `out` (layout.count).
  absl::Status ReadMaster(int i, float* out);
  // Buffer i's working copy (layout.count values in the compute precision)
  // to the NVMe tier; WeightSpilled(i) only.
  absl::Status WriteWorking(int i, const void* working);

  // Checkpoints, restores and initial loads stream the spilled state one
  // layer at a time through one layer's staging (checkpoint_staging_,
  // planned as host.staging.checkpoint and allocated by Open()): a save
  // reads each layer's master (if spilled) from the tier just before it is
  // written to model.safetensors, and its moments just before
  // optimizer.safetensors gets them; a restore writes each to the tier as
  // soon as it is read. The transfers use it in place (no bounce buffer),
  // so they take no host memory beyond the plan.
  // Spilled buffer i as checkpoints see it, streamed through that staging.
  // `host_master`: its master in host memory, used unless MasterSpilled(i).
  CheckpointBuffer SpilledCheckpointBuffer(int i, float* host_master);

 private:
  // The largest spilled buffer's element count.
  int64_t LargestSpilled() const;
  // Item i-1's arrays as SpillStreamer::Read/Write take them.
  template <typename T>
  std::vector<T*> SpillArrays(int i, T* exp_avg, T* exp_avg_sq,
                              T* master) const;

  const JobConfig config_;
  const ExecutionPlan plan_;
  const TrainerOptions options_;
  const std::vector<BufferLayout> layouts_;  // ModelLayout(config_.model)
  const std::vector<BufferShard> shards_;    // empty: one rank
  // Elements of buffer i this rank holds, and where they start.
  int64_t Count(int i) const {
    return shards_.empty() ? layouts_[i].count : shards_[i].owned();
  }
  int64_t Begin(int i) const { return shards_.empty() ? 0 : shards_[i].begin; }

  // Destroyed in this order's reverse.
  std::unique_ptr<storage::BlockDevice> ssd_device_;  // null if injected
  std::unique_ptr<storage::ExtentStore> ssd_store_;
  std::unique_ptr<storage::SpillStreamer> spill_;
  // One spilled layer's state for checkpoints, restores and the initial
  // values: exp_avg, exp_avg_sq (and master where MasterSpilled(1)), each
  // LargestSpilled() fp32 rounded up to the device's alignment, on 4 KiB
  // pages so that it holds exactly its planned bytes.
  std::vector<storage::AlignedBuffer> checkpoint_staging_;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TRAIN_SSD_TIER_H_
