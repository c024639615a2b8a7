// A job's training state in host memory: one HostBuffer (core/engine/
// host_buffer.h) per buffer of ModelLayout() (embedding, block layers...,
// final norm), and the tensors that own the memory its pointers point into.
// Owns allocation (each array charged to its planned buffer in the host
// ledger first, pinned where H2D reads it every step on a GPU), the initial
// weights, the working copies that follow the masters, and the views that
// checkpoints take of the state. Where the NVMe tier holds a buffer's state
// (core/train/ssd_tier.h) the HostBuffer's pointer is null and the tier is
// asked instead.
//
// Thread safety: one thread (the trainer's).
#ifndef STRONGHOLD_CORE_TRAIN_HOST_STATE_H_
#define STRONGHOLD_CORE_TRAIN_HOST_STATE_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/checkpoint/checkpoint.h"
#include "core/device/device.h"
#include "core/engine/host_buffer.h"
#include "core/plan/host_ledger.h"
#include "core/plan/job_config.h"
#include "core/train/ssd_tier.h"

namespace stronghold::core {

// The checkpoint's view of a buffer whose state is all in host memory (a
// spilled one's is SsdTier::SpilledCheckpointBuffer's).
CheckpointBuffer ToCheckpointBuffer(const HostBuffer& buffer);

class HostState {
 public:
  // Holds nothing until Allocate(). `tier` (not owned, required) says which
  // state the NVMe tier keeps and reads and writes it; it outlives this.
  // `shards` (one per buffer; empty: one rank): a data-parallel rank holds
  // its slice of each buffer only (HostBuffer::shard, core/plan/shard.h),
  // and its initial weights are that slice of one rank's.
  HostState(const JobConfig& config, SsdTier* tier,
            std::vector<BufferShard> shards = {});
  HostState(const HostState&) = delete;
  HostState& operator=(const HostState&) = delete;

  // Every buffer's host state, each array charged to its planned buffer
  // (core/plan/host_ledger.h) before it is allocated; `ledger` not owned.
  // `reference`: the reference plan's state, charged as the (host)
  // device's, else as the host's ("host." names). With `gpu`, what H2D
  // copies every step is pinned, from `device` (not owned; it outlives
  // the state): the fp32 masters and gradients, or in bf16/fp16 the working
  // copy. Gradients and moments start at zero; masters and working copies
  // are uninitialized (InitWeights, RefreshWorkingCopies).
  absl::Status Allocate(bool reference, bool gpu, HostLedger* ledger,
                        Device* device);

  // The initial masters (of spilled masters: SsdTier::Open).
  void InitWeights();

  // The working copies follow the masters (after the initialization, a
  // restore or a test's edit of the masters); the optimizer keeps them so.
  // OK and nothing done in fp32.
  absl::Status RefreshWorkingCopies();

  // For the reference's plain autograd: every master becomes a leaf that
  // requires grad, whose .grad is the buffer's gradient (backward
  // accumulates in place).
  void TrackGradients();
  // Every gradient to zero.
  void ZeroGradients();
  // Buffer i's fp32 master as a tensor [layout.count]; not of a buffer whose
  // master is on the NVMe tier.
  const torch::Tensor& master(int i) const { return storage_.at(i).param; }

  // The state as checkpoints see it, with the spilled buffers' streamed
  // through the tier's checkpoint staging (SsdTier::SpilledCheckpointBuffer).
  std::vector<CheckpointBuffer> CheckpointBuffers();

  // A copy of every buffer's fp32 master (a rank's slice of it), read from
  // the tier where it is kept there.
  absl::StatusOr<std::vector<std::vector<float>>> Masters();

  // Embedding, blocks..., final_norm: what the engine trains.
  const std::vector<HostBuffer>& buffers() const { return buffers_; }

 private:
  // What owns a HostBuffer's memory: its pointers point into these
  // (undefined where the pointer is null).
  struct Storage {
    torch::Tensor param;       // [count] fp32; the reference's autograd leaf
    torch::Tensor grad;        // [count] fp32
    torch::Tensor exp_avg;     // [count] fp32
    torch::Tensor exp_avg_sq;  // [count] fp32
    torch::Tensor working;     // [count] int16 holding bf16/fp16 bits
  };

  // `count` elements of `dtype`, charged to `name` first; pinned from
  // device_ when `pinned`; zeroed when `zero`.
  absl::StatusOr<torch::Tensor> Allocate(const std::string& name, int64_t count,
                                         torch::ScalarType dtype, bool pinned,
                                         bool zero);

  const JobConfig config_;
  SsdTier* const tier_;
  const std::vector<BufferShard> shards_;  // empty: one rank
  HostLedger* ledger_ = nullptr;           // set by Allocate()
  Device* device_ = nullptr;  // set by Allocate(); pinned memory only
  std::vector<HostBuffer> buffers_;
  std::vector<Storage> storage_;  // parallel to buffers_
  // [largest spilled count] fp32: the gradient accumulator that the spilled
  // buffers share where SsdTier::GradTransient (undefined elsewhere).
  torch::Tensor spilled_grad_;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TRAIN_HOST_STATE_H_
