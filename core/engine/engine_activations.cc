// WindowedEngine::Impl (core/engine/engine_impl.h): the activation
// checkpoints, the input of each block layer and of the head
// ([L+1, micro_batch, seq_len, hidden] in the compute precision). They stay
// on the device, or with plan.host_checkpoints go to host memory after
// forward writes them and come back before backward reads them, through one
// device boundary per slot. The layers whose autograd graph is kept from
// forward to backward (kept_) are Forward()'s and Backward()'s
// (engine_passes.cc).
#include <torch/torch.h>

#include <cstdint>

#include "core/engine/engine_impl.h"
#include "core/plan/planner.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

absl::Status WindowedEngine::Impl::AllocateCheckpoints() {
  const int64_t act = BoundaryActivationBytes(config_);
  const int boundaries = host_ckpt_mode_ ? slots_count_ + 1 : layers_ + 1;
  ASSIGN_OR_RETURN(
      ckpt_, device_->Allocate(boundaries * act, "activation checkpoints"));
  if (host_ckpt_mode_) {
    RETURN_IF_ERROR(
        Charge("host.activations.checkpoints", (layers_ + 1) * act));
    ASSIGN_OR_RETURN(host_ckpt_, device_->AllocateHost((layers_ + 1) * act));
    boundary_d2h_.resize(boundaries);
  }
  return absl::OkStatus();
}

torch::Tensor WindowedEngine::Impl::Checkpoint(
    int i, const torch::TensorOptions& dev) {
  const int64_t act = BoundaryActivationBytes(config_);  // bytes
  return torch::from_blob(static_cast<char*>(ckpt_) + BoundaryIndex(i) * act,
                          {config_.training.micro_batch, config_.model.seq_len,
                           config_.model.hidden},
                          dev);
}

void WindowedEngine::Impl::BeforeWriting(int i) {
  if (host_ckpt_mode_)
    device_->QueueWait(Queue::kCompute, boundary_d2h_[BoundaryIndex(i)]);
}

void WindowedEngine::Impl::AfterWriting(int i) {
  if (!host_ckpt_mode_ || i == layers_) return;
  const int64_t act = BoundaryActivationBytes(config_);
  device_->QueueWait(Queue::kD2H, device_->Record(Queue::kCompute));
  device_->Copy(Queue::kD2H, static_cast<char*>(host_ckpt_) + i * act,
                static_cast<char*>(ckpt_) + BoundaryIndex(i) * act, act, i + 1);
  stats_.d2h_bytes += act;
  boundary_d2h_[BoundaryIndex(i)] = device_->Record(Queue::kD2H);
}

void WindowedEngine::Impl::RestoreInput(int layer, int b) {
  // The boundary's last reader was this slot's previous layer; its last
  // writer, forward's copy to the host.
  const int64_t act = BoundaryActivationBytes(config_);
  device_->QueueWait(Queue::kH2D, boundary_d2h_[BoundaryIndex(layer)]);
  device_->Copy(Queue::kH2D,
                static_cast<char*>(ckpt_) + BoundaryIndex(layer) * act,
                static_cast<char*>(host_ckpt_) + layer * act, act, b);
  stats_.h2d_bytes += act;
}

}  // namespace stronghold::core
