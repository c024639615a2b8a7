// WindowedEngine::Impl::Step (core/engine/engine_impl.h): one training step
// read top to bottom, as a sequence of phases, each a method below it:
//   BeginStep                     reset the step's figures, plan the tier's
//   reads SendEmbeddingAndNorm          their updated weights to the device
//   QueueBackups                  speculative updates: save each buffer's state
//   first RunMicroBatches               forward and backward of each
//   micro-batch; the last
//                                 one's gradients are updated or measured as
//                                 they land
//   GatherGradients               wait for every gradient; the global norm
//   DecideStep                    keep, roll back, skip or fail
//   (core/engine/step_policy.h) UpdateHost, UpdateOnDevice    the deferred or
//   redone updates FinishStats, PlanNextFetches  the step's figures; the next
//   step's reads
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/engine/engine_impl.h"
#include "core/util/status_macros.h"
#include "storage/spill_streamer.h"

namespace stronghold::core {
using engine_internal::ComputeScalarType;
using engine_internal::GradTail;
using engine_internal::Since;

absl::StatusOr<StepMetrics> WindowedEngine::Impl::Step(
    int64_t step, const BatchSource& batches) {
  const TrainingConfig& t = config_.training;
  // Per rank: the global batch's micro-batches are dealt out over the ranks.
  const int micro_batches = t.batch / t.micro_batch / world_;
  // Clipping needs the global norm before any update; fp16 needs to know
  // that no layer overflowed (else the whole step is skipped). Speculative
  // updates run as gradients land, as if the step were not clipped and
  // finite, after saving each layer's state; a step that turns out clipped
  // or overflowed is rolled back and redone (docs/engine.md).
  const bool defer = DeferUpdates(t, precision_, speculate_);
  const double scale = state_->scale;  // 1 unless fp16
  const int64_t adam_step = state_->optimizer_step + 1;
  const bool profile = BeginStep(step, micro_batches, scale, adam_step);
  auto scope = device_->ComputeScope();
  const auto dev = torch::TensorOptions()
                       .dtype(ComputeScalarType(precision_))
                       .device(device_->torch_device());

  SendEmbeddingAndNorm();
  if (speculate_) QueueBackups();
  ASSIGN_OR_RETURN(
      const double loss_sum,
      RunMicroBatches(batches, micro_batches, dev, profile, defer, scale));
  ASSIGN_OR_RETURN(const std::vector<StepStats> grads,
                   GatherGradients(defer, scale));

  const StepDecision decision =
      DecideStep(t, precision_, speculate_, stats_.grad_norm, scale);
  stats_.rolled_back = decision.roll_back;
  if (decision.fail) return FailStep(step, decision, grads);
  AdvanceLossScale(precision_, decision.finite, state_);
  cut_ns_ = Timeline::NowNs();  // the next step's timeline starts here
  const AdamWStep hyper = AdamWHyper(t, step, adam_step, decision.grad_scale);
  UpdateHost(decision, defer, hyper);
  if (device_adamw_ != nullptr && decision.finite) UpdateOnDevice(hyper);

  FinishStats(loss_sum, micro_batches);
  PlanNextFetches(micro_batches);
  // CUDA: the step's finished copies, timed on the GPU.
  device_->FlushTimeline();
  RETURN_IF_ERROR(device_->status());
  return stats_;
}

// Returns whether the step profiles its layers' forward (ProfileNextStep).
bool WindowedEngine::Impl::BeginStep(int64_t step, int micro_batches,
                                     double scale, int64_t adam_step) {
  stats_ = StepMetrics();
  // The last step planned this one as soon as its updates were queued.
  if (!std::exchange(tier_planned_, false) && tier_->active()) {
    tier_->Plan(FetchOrder(micro_batches), updated_);
  }
  const bool profile = std::exchange(profile_, false);
  stats_.loss_scale = scale;
  worker_.reset_stats();
  step_ = step;
  // As if not clipped: a clipped step is redone (speculative) or its
  // deferred updates take the decision's hyper-parameters.
  hyper_ = AdamWHyper(config_.training, step, adam_step, 1.0 / scale);
  return profile;
}

void WindowedEngine::Impl::SendEmbeddingAndNorm() {
  // The embedding and final norm live on the device: bring their updates.
  // Buffers updated on the device: uploaded after the host state was read.
  if (std::exchange(dev_upload_, false)) CopyDeviceState(/*to_device=*/true);
  for (int b : {0, last()}) {
    if (OnDevice(b)) continue;
    WaitForUpdate(b);
    char* dst = static_cast<char*>(b == 0 ? emb_param_ : fin_param_);
    device_->Copy(Queue::kH2D, dst + PieceOffset(b) * elem_, Source(b),
                  buffers_[b].count() * elem_, b);
    stats_.h2d_bytes += buffers_[b].count() * elem_;
  }
  const Event sent = device_->Record(Queue::kH2D);
  device_->QueueWait(Queue::kCompute, sent);
  if (sharded_) {
    GatherLayer(emb_param_, 0, sent);
    GatherLayer(fin_param_, last(), sent);
  }
}

void WindowedEngine::Impl::QueueBackups() {
  // The backups need no gradient: the worker saves each buffer while it
  // has nothing else to do (forward, mostly), in the order backward
  // updates them, after the last step's updates (queued before). This
  // takes 24-28 bytes per parameter of copying off backward's path.
  ++epoch_;
  for (int b : backup_order_) {
    GradWorker::Task save{
        .buffer = &buffers_[b], .index = b, .backup = &backups_[b]};
    save.epoch = epoch_;
    worker_.SubmitBackground(save);
  }
}

// The summed loss of the micro-batches, or the error of the batch source.
absl::StatusOr<double> WindowedEngine::Impl::RunMicroBatches(
    const BatchSource& batches, int micro_batches,
    const torch::TensorOptions& dev, bool profile, bool defer, double scale) {
  const TrainingConfig& t = config_.training;
  torch::Tensor inputs =
      torch::empty({t.micro_batch, config_.model.seq_len}, torch::kInt64);
  torch::Tensor targets = torch::empty_like(inputs);
  for (int mb = 0; mb < micro_batches; ++mb) {
    // Rank r computes the global micro-batches m * N + r.
    if (absl::Status filled =
            batches(mb * world_ + rank_, inputs.data_ptr<int64_t>(),
                    targets.data_ptr<int64_t>());
        !filled.ok()) {
      worker_.WaitAll();
      return filled;
    }
    const torch::Tensor tokens = inputs.to(device_->torch_device());
    const torch::Tensor labels = targets.to(device_->torch_device());
    const bool last_mb = mb + 1 == micro_batches;
    const int64_t fwd_start = Timeline::NowNs();
    // Spilled optimizer state is needed in backward order, during the
    // last micro-batch: its reads start halfway through that forward, so
    // they overlap it without delaying the reads forward needs first
    // (what H2D sends from the tier, core/engine/tier_reader.h).
    Forward(tokens, dev, profile, last_mb && !defer ? layers_ / 2 : -1);
    const int64_t bwd_start = Timeline::NowNs();
    stats_.layer_forward_s += (bwd_start - fwd_start) / 1e9 / layers_;
    // The last micro-batch: each layer's update follows its gradient, or,
    // deferred, its accumulation measures the gradient for the global norm.
    const GradTail tail = !last_mb ? GradTail::kNone
                          : defer  ? GradTail::kMeasure
                                   : GradTail::kUpdate;
    // The loss of the job's N * M micro-batches is their mean.
    losses_[mb] = Backward(tokens, labels, dev, mb == 0, tail,
                           micro_batches * world_, scale);
  }
  return JobLoss(micro_batches);  // engine_shards.cc
}

// Each buffer's gradient measure (buffer order); sets stats_.grad_norm.
absl::StatusOr<std::vector<StepStats>> WindowedEngine::Impl::GatherGradients(
    bool defer, double scale) {
  // Gradients must all have landed before the step's updates are decided.
  // The device finishes backward first: on a GPU the host is ahead of it
  // by as many layers as there are slots, and that wait is compute, not
  // the optimizer (with W = L it was most of backward).
  device_->HostWait(device_->Record(Queue::kCompute));
  const int64_t wait_start = Timeline::NowNs();
  worker_.WaitAll();
  RETURN_IF_ERROR(tier_error_);      // the NVMe tier failed a read for H2D
  RETURN_IF_ERROR(comm_error_);      // or a collective
  RETURN_IF_ERROR(worker_.error());  // or an update
  // Or the device a copy: no update from its gradients.
  RETURN_IF_ERROR(device_->status());
  // The tier's traffic since this point in the last step: each spilled
  // update's state staged and written back (with the working copy it
  // wrote, where that is there), each fetch's read of what H2D sends from
  // there.
  // Deferred updates run after this and count for the next step (but for
  // the first slots' staging, which starts in the last backward), as do
  // the reads the next step's plan starts at this step's end.
  if (spill_ != nullptr) {
    const storage::SpillStreamer::Traffic traffic = spill_->traffic();
    stats_.nvme_read_bytes = traffic.read - traffic_seen_.read;
    stats_.nvme_reused_bytes = traffic.reused - traffic_seen_.reused;
    stats_.nvme_write_bytes = traffic.written - traffic_seen_.written;
    traffic_seen_ = traffic;
  }
  // Deferred: the last accumulation measured each gradient (scaled by
  // 1 / loss scale), so the global norm needs no second pass.
  std::vector<StepStats> grads = defer ? worker_.measured() : worker_.stats();
  for (int b = 0; b < num_buffers(); ++b) {
    if (OnDevice(b))
      grads[b] =
          device_adamw_->Measure(dev_opt_[b], static_cast<float>(1.0 / scale));
  }
  // Sharded: each rank measured its slices; the whole buffers' figures,
  // the same on every rank.
  if (sharded_) RETURN_IF_ERROR(CombineShardStats(&grads));
  double sum_sq = 0;  // buffer order, as the reference sums it
  for (const StepStats& g : grads) sum_sq += g.grad_sq_sum;
  stats_.optimizer_s += Since(wait_start);
  stats_.grad_norm = std::sqrt(sum_sq);
  return grads;
}

// The step's gradient is not finite at any loss scale: the job fails.
absl::Status WindowedEngine::Impl::FailStep(
    int64_t step, const StepDecision& decision,
    const std::vector<StepStats>& grads) {
  // The job fails; its host state is left as before the step.
  if (decision.roll_back) {
    for (int b : update_order_) RollBack(b, nullptr);
    worker_.WaitAll();
  }
  return NonFiniteGradient(step, ModelLayout(config_.model), grads);
}

// The host updates that follow the decision, queued on the worker in
// update_order_; `hyper` carries the step's clip factor.
void WindowedEngine::Impl::UpdateHost(const StepDecision& decision, bool defer,
                                      const AdamWStep& hyper) {
  // Skipped: nothing was updated (the updates were deferred or are undone).
  if (!decision.finite) {
    stats_.skipped = true;
    stats_.grad_norm = 0;
    if (decision.roll_back) {
      for (int b : update_order_) RollBack(b, nullptr);
    }
  } else if (decision.roll_back) {
    // Clipped: undo each layer and update it again, in forward order.
    for (int b : update_order_) RollBack(b, &hyper);
  } else if (defer) {
    // Forward order, so the next step's forward waits only for its layer
    // (update_order_).
    StageSpilled(/*forward=*/true);
    for (int b : update_order_) {
      update_task_[b] = worker_.Submit({Event{}, nullptr, DType::kFloat32,
                                        &buffers_[b], b, false, true, hyper});
    }
  }
}

void WindowedEngine::Impl::FinishStats(double loss_sum, int micro_batches) {
  stats_.loss = loss_sum / (micro_batches * world_);  // the job's

  stats_.layer_forward_s /= micro_batches;
  if (!profiled_forward_s_.empty()) {  // ProfileNextStep: the median layer
    auto mid = profiled_forward_s_.begin() + profiled_forward_s_.size() / 2;
    std::nth_element(profiled_forward_s_.begin(), mid,
                     profiled_forward_s_.end());
    stats_.layer_forward_s = *mid;
    profiled_forward_s_.clear();
  }
  stats_.layer_backward_s /= micro_batches;
  stats_.layer_optimizer_s = worker_.optimizer_s() / num_buffers();
  const TierReader::Stats& tier = tier_->stats();
  stats_.nvme_wait_s = tier.wait_s - tier_seen_.wait_s;
  stats_.nvme_unplanned_reads = tier.unplanned - tier_seen_.unplanned;
  tier_seen_ = tier;
}

void WindowedEngine::Impl::PlanNextFetches(int micro_batches) {
  // The next step fetches in the same order: its first reads from the
  // tier start now, as their layers' updates finish (they count for it).
  if (tier_->active()) {
    tier_->Plan(FetchOrder(micro_batches), updated_);
    tier_planned_ = true;
  }
}

}  // namespace stronghold::core
