// WindowedEngine::Impl (core/engine/engine_impl.h): one micro-batch's
// passes over the model. Forward() runs the embedding and the block layers
// without autograd (but for the kept layers), writing each layer's input as
// an activation checkpoint; Backward() runs the head's loss and, layer by
// layer down, recomputes each block from its checkpoint, runs its backward
// and hands its gradient to the CPU worker (HandOff()).
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "core/engine/engine_impl.h"
#include "core/model/gpt.h"
#include "core/model/network.h"

namespace stronghold::core {

using engine_internal::GradTail;
using engine_internal::KeptLayer;
using engine_internal::Since;
using engine_internal::Slot;

void WindowedEngine::Impl::Forward(const torch::Tensor& tokens,
                                   const torch::TensorOptions& dev,
                                   bool profile, int stage_at) {
  torch::NoGradGuard no_grad;
  const ModelConfig& model = config_.model;
  const int64_t n = buffers_[0].layout.count;
  const int ahead = l2l_ ? 0 : window_;
  PrefetchReady(0, ahead - 1);  // fill the window
  BeforeWriting(0);
  Checkpoint(0, dev).copy_(net::Embed(torch::from_blob(emb_param_, {n}, dev),
                                      buffers_[0].layout, tokens, model));
  AfterWriting(0);
  for (int i = 0; i < layers_; ++i) {
    if (i == stage_at) StageSpilled(/*forward=*/false);
    PrefetchReady(i, i + ahead);
    Slot* slot = Ensure(i);
    const int64_t start = Timeline::NowNs();
    const BufferLayout& layout = buffers_[slot->buffer].layout;
    if (i >= kept_from_) {
      // Backward will use this graph instead of recomputing the layer.
      torch::AutoGradMode grad(true);
      KeptLayer& k = kept_[i];
      k.weights = Weights(*slot, dev).requires_grad_(true);
      k.input = Checkpoint(i, dev).detach().requires_grad_(true);
      k.output = net::Block(k.weights, layout, k.input, model);
      BeforeWriting(i + 1);
      Checkpoint(i + 1, dev).copy_(k.output.detach());
    } else {
      torch::Tensor y =
          net::Block(Weights(*slot, dev), layout, Checkpoint(i, dev), model);
      BeforeWriting(i + 1);
      Checkpoint(i + 1, dev).copy_(y);
    }
    AfterWriting(i + 1);
    if (profile) {
      device_->HostWait(device_->Record(Queue::kCompute));
      profiled_forward_s_.push_back(Since(start));
    }
    Span span{"fwd", Lane::kCompute, i + 1, start, 0};
    const bool keep = i >= layers_ - std::max(window_, 1);  // the last W
    if (!keep && i >= resident_layers_) Release(slot);
    span.end_ns = Timeline::NowNs();
    stats_.compute_s += (span.end_ns - start) / 1e9;
    if (timeline_ != nullptr) timeline_->Add(span);
  }
}

Event WindowedEngine::Impl::HandOff(int b, const void* device_grad, int staging,
                                    bool first, GradTail tail) {
  const bool update = tail == GradTail::kUpdate;
  const int64_t start = Timeline::NowNs();
  if (staging_task_[staging] != 0)
    worker_.WaitFor(staging_task_[staging]);  // staging reuse
  stats_.d2h_wait_s += Since(start);
  // Sharded: the gradient summed over the ranks, this rank's slice only
  // (engine_shards.cc).
  const void* source =
      sharded_ ? ShardGradient(b, device_grad, staging) : device_grad;
  device_->QueueWait(Queue::kD2H, device_->Record(Queue::kCompute));
  device_->Copy(Queue::kD2H, staging_[staging], source, StagingCount(b) * elem_,
                b);
  stats_.d2h_bytes += StagingCount(b) * elem_;
  const Event landed = device_->Record(Queue::kD2H);
  if (l2l_) {
    const int64_t s = Timeline::NowNs();
    device_->HostWait(landed);  // L2L: synchronous copies
    stats_.d2h_wait_s += Since(s);
  }
  GradWorker::Task task{landed,
                        staging_[staging],
                        ToDType(precision_),
                        &buffers_[b],
                        b,
                        first,
                        update,
                        hyper_,
                        tail == GradTail::kMeasure,
                        static_cast<float>(1.0 / state_->scale)};
  if (sharded_ && comm_->ordered()) {  // every rank's piece, added in order
    task.pieces = world_;
    task.piece_stride = buffers_[b].shard.slice;
  }
  // Saved before the update, unless in the background already.
  if (update && speculate_) {
    task.backup = &backups_[b];
    task.epoch = epoch_;
  }
  staging_task_[staging] = worker_.Submit(task);
  if (update) update_task_[b] = staging_task_[staging];
  return landed;
}

double WindowedEngine::Impl::Backward(const torch::Tensor& tokens,
                                      const torch::Tensor& labels,
                                      const torch::TensorOptions& dev,
                                      bool first, GradTail tail,
                                      int micro_batches, double loss_scale) {
  const ModelConfig& model = config_.model;
  const BufferLayout& emb_layout = buffers_[0].layout;
  const BufferLayout& fin_layout = buffers_[last()].layout;
  torch::Tensor emb = torch::from_blob(emb_param_, {emb_layout.count}, dev)
                          .requires_grad_(true);
  torch::Tensor fin = torch::from_blob(fin_param_, {fin_layout.count}, dev)
                          .requires_grad_(true);
  // Zeroed with their padding (sharded), which the reduce-scatter reads.
  // Their gradients' previous D2H copies must have left before compute
  // zeroes them (the layers' slots get the same order through Fetch).
  device_->QueueWait(Queue::kCompute, emb_d2h_);
  device_->QueueWait(Queue::kCompute, fin_d2h_);
  emb.mutable_grad() = torch::from_blob(emb_grad_, {DeviceCount(0)}, dev)
                           .zero_()
                           .narrow(0, 0, emb_layout.count);
  fin.mutable_grad() = torch::from_blob(fin_grad_, {DeviceCount(last())}, dev)
                           .zero_()
                           .narrow(0, 0, fin_layout.count);

  int64_t start = Timeline::NowNs();
  torch::Tensor x = Checkpoint(layers_, dev).detach().requires_grad_(true);
  torch::Tensor loss =
      net::HeadLoss(fin, fin_layout, emb, emb_layout, x, labels, model);
  const double loss_value = loss.item<double>();
  gpt::LossObjective(loss, micro_batches, loss_scale).backward();
  torch::Tensor dy = x.grad();
  stats_.compute_s += Since(start);

  const int ahead = l2l_ ? 0 : window_;
  for (int i = layers_ - 1; i >= 0; --i) {
    // Deferred updates run in forward order once the global norm is
    // known; staging their state needs no norm, so the first ones' reads
    // start halfway through the last backward, while the slots are idle.
    if (tail == GradTail::kMeasure && i == layers_ / 2)
      StageSpilled(/*forward=*/true);
    if (ahead > 0 && i - ahead >= 0) Fetch(i - ahead, /*with_input=*/true);
    Slot* slot = Ensure(i, /*with_input=*/true);
    const BufferLayout& layout = buffers_[slot->buffer].layout;
    start = Timeline::NowNs();
    torch::Tensor grad = torch::from_blob(slot->grad, {DeviceCount(1)}, dev)
                             .zero_()
                             .narrow(0, 0, layout.count);
    if (i >= kept_from_) {
      // The slot holds the same bytes as in forward (same slot, same step).
      KeptLayer k = std::move(kept_[i]);
      k.weights.mutable_grad() = grad;
      k.output.backward(dy);
      dy = k.input.grad();
    } else {
      torch::Tensor w = Weights(*slot, dev).requires_grad_(true);
      w.mutable_grad() = grad;
      torch::Tensor xi = Checkpoint(i, dev).detach().requires_grad_(true);
      net::Block(w, layout, xi, model).backward(dy);
      dy = xi.grad();
    }
    const int64_t end = Timeline::NowNs();
    stats_.compute_s += (end - start) / 1e9;
    stats_.layer_backward_s += (end - start) / 1e9 / layers_;
    if (timeline_ != nullptr)
      timeline_->Add({"bwd", Lane::kCompute, i + 1, start, end});
    if (i < resident_layers_) {  // stays; its gradient is accumulated there
      device_adamw_->Accumulate(dev_opt_[i + 1], slot->grad,
                                ToDType(precision_), first);
      continue;
    }
    const int staging = static_cast<int>(slot - slots_.data());
    slot->d2h_done = HandOff(slot->buffer, slot->grad, staging, first, tail);
    Release(slot);
  }
  start = Timeline::NowNs();
  net::Embed(emb, emb_layout, tokens, model).backward(dy);
  stats_.compute_s += Since(start);
  const int slots = static_cast<int>(slots_.size());
  if (OnDevice(
          0)) {  // accumulated there (measured once every micro-batch is in)
    device_adamw_->Accumulate(dev_opt_[0], emb_grad_, ToDType(precision_),
                              first);
  } else {
    emb_d2h_ = HandOff(0, emb_grad_, slots, first, tail);
  }
  fin_d2h_ = HandOff(last(), fin_grad_, slots + 1, first, tail);
  return loss_value;
}

}  // namespace stronghold::core
