// WindowedEngine::Impl (core/engine/engine_impl.h): data parallelism over
// the N ranks of comm_ (core/engine/engine.h, Create). What each collective
// does to a buffer, and how the ranks' pieces become the step's figures:
//   GatherLayer        fetch: this rank's updated slice arrived in its piece
//                      of the padded device buffer; all-gather the others
//   ShardGradient      hand-off: reduce-scatter the device gradient so this
//                      rank gets its slice summed over the ranks (ordered
//                      mode: every rank's piece, which the host adds in
//                      rank order onto its accumulator, bit-exact against
//                      one rank's micro-batches)
//   CombineShardStats  the global norm's pieces: every rank's per-chunk
//                      statistics, added in global chunk order
//   JobLoss            the job's loss: every micro-batch's, in global order
// Collectives are issued only from the engine thread, at points the
// schedule fixes (Ensure, HandOff, the step's phases), never from a
// timing-dependent choice such as PrefetchReady's.
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dist/communicator.h"
#include "core/engine/engine_impl.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

using engine_internal::ComputeScalarType;

int64_t WindowedEngine::Impl::StagingCount(int b) const {
  const HostBuffer& h = buffers_[b];
  if (!sharded_) return h.layout.count;
  return comm_->ordered() ? world_ * h.shard.slice : h.count();
}

absl::Status WindowedEngine::Impl::CheckShards() const {
  if (!sharded_) return absl::OkStatus();
  if (emb_on_device_ || resident_layers_ > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        emb_on_device_ ? "offload.device_embedding_optimizer"
                       : "offload.device_resident_layers",
        " with world_size > 1: the optimizer on the device does not shard its "
        "state yet; turn it off for data-parallel jobs"));
  }
  for (const HostBuffer& h : buffers_) {
    const BufferShard want =
        ShardBuffer(h.layout.count, optimizer_->ChunkElements(h.layout.count),
                    world_, rank_);
    if (h.shard.chunk != want.chunk || h.shard.begin != want.begin ||
        h.shard.end != want.end || h.shard.padded != want.padded) {
      return absl::InvalidArgumentError(
          absl::StrCat(h.layout.name, ": its host state is not rank ", rank_,
                       " of ", world_, "'s slice (core/plan/shard.h)"));
    }
  }
  return absl::OkStatus();
}

absl::Status WindowedEngine::Impl::AllocateShards() {
  if (!sharded_) return absl::OkStatus();
  const int slots = static_cast<int>(slots_.size());
  int64_t chunks = 0;
  for (int b = 0; b < num_buffers(); ++b) {
    chunk_stats_.emplace_back(buffers_[b].shard.chunks_per_rank());
    buffers_[b].chunk_stats = chunk_stats_.back().data();
    chunks += buffers_[b].shard.chunks_per_rank();
  }
  chunk_mine_.resize(3 * chunks);
  chunk_all_.resize(3 * chunks * world_);
  for (int s = 0; s < slots + 2; ++s) {
    const int b = s < slots ? 1 : (s == slots ? 0 : last());
    const int64_t n = comm_->ordered() ? world_ * buffers_[b].shard.slice
                                       : buffers_[b].shard.slice;
    ASSIGN_OR_RETURN(
        void* p,
        device_->Allocate(n * elem_, absl::StrCat("gradient shard ", s)));
    shard_grad_.push_back(p);
  }
  return absl::OkStatus();
}

void WindowedEngine::Impl::GatherLayer(void* param, int b, Event arrived) {
  device_->QueueWait(Queue::kCompute, arrived);
  const int64_t start = Timeline::NowNs();
  const auto dev = torch::TensorOptions()
                       .dtype(ComputeScalarType(precision_))
                       .device(device_->torch_device());
  const int64_t slice = buffers_[b].shard.slice;
  torch::Tensor whole = torch::from_blob(param, {DeviceCount(b)}, dev);
  absl::Status s =
      comm_->AllGather(whole.narrow(0, PieceOffset(b), slice), whole);
  if (comm_error_.ok() && !s.ok()) comm_error_ = s;
  if (timeline_ != nullptr)
    timeline_->Add({"all_gather", Lane::kWait, b, start, Timeline::NowNs()});
}

const void* WindowedEngine::Impl::ShardGradient(int b, const void* device_grad,
                                                int staging) {
  const int64_t start = Timeline::NowNs();
  const auto dev = torch::TensorOptions()
                       .dtype(ComputeScalarType(precision_))
                       .device(device_->torch_device());
  torch::Tensor grad =
      torch::from_blob(const_cast<void*>(device_grad), {DeviceCount(b)}, dev);
  const int64_t slice = buffers_[b].shard.slice;
  torch::Tensor out = torch::from_blob(
      shard_grad_[staging], {comm_->ordered() ? world_ * slice : slice}, dev);
  absl::Status s = comm_->ordered() ? comm_->GatherPieces(grad, out)
                                    : comm_->ReduceScatterSum(grad, out);
  if (comm_error_.ok() && !s.ok()) comm_error_ = s;
  if (timeline_ != nullptr) {
    timeline_->Add(
        {"reduce_scatter", Lane::kWait, b, start, Timeline::NowNs()});
  }
  return shard_grad_[staging];
}

absl::Status WindowedEngine::Impl::CombineShardStats(
    std::vector<StepStats>* grads) {
  // Each rank's chunks of each buffer, in buffer order, as (sum of squares,
  // non-finite count, first non-finite index in the whole buffer).
  int64_t k = 0;
  for (int b = 0; b < num_buffers(); ++b) {
    const HostBuffer& h = buffers_[b];
    const int64_t owned_chunks =
        (h.count() + h.shard.chunk - 1) / h.shard.chunk;
    for (int64_t c = 0; c < h.shard.chunks_per_rank(); ++c, k += 3) {
      const StepStats s = c < owned_chunks ? chunk_stats_[b][c] : StepStats();
      chunk_mine_[k] = s.grad_sq_sum;
      chunk_mine_[k + 1] = static_cast<double>(s.nonfinite_count);
      chunk_mine_[k + 2] =
          s.first_nonfinite < 0
              ? -1.0
              : static_cast<double>(s.first_nonfinite + h.shard.begin);
    }
  }
  RETURN_IF_ERROR(
      comm_->AllGatherHost(chunk_mine_, absl::MakeSpan(chunk_all_)));
  const int64_t per_rank = static_cast<int64_t>(chunk_mine_.size());
  int64_t first_of_buffer = 0;  // the buffer's first chunk in a rank's row
  for (int b = 0; b < num_buffers(); ++b) {
    const BufferShard& shard = buffers_[b].shard;
    StepStats total;
    for (int64_t g = 0; g < shard.chunks(); ++g) {
      const int64_t r = g / shard.chunks_per_rank();
      const int64_t c = g % shard.chunks_per_rank();
      const double* v = &chunk_all_[r * per_rank + 3 * (first_of_buffer + c)];
      StepStats s;
      s.grad_sq_sum = v[0];
      s.nonfinite_count = static_cast<int64_t>(v[1]);
      s.first_nonfinite = static_cast<int64_t>(v[2]);
      AppendStats(s, &total);
    }
    (*grads)[b] = total;
    first_of_buffer += shard.chunks_per_rank();
  }
  return absl::OkStatus();
}

absl::StatusOr<double> WindowedEngine::Impl::JobLoss(int micro_batches) {
  if (!sharded_) {
    double sum = 0;  // in order, as the reference sums it
    for (int mb = 0; mb < micro_batches; ++mb) sum += losses_[mb];
    return sum;
  }
  RETURN_IF_ERROR(comm_->AllGatherHost(
      absl::MakeConstSpan(losses_.data(), micro_batches),
      absl::MakeSpan(losses_all_.data(), world_ * micro_batches)));
  double sum = 0;  // global micro-batch j = m * N + r, in order
  for (int j = 0; j < world_ * micro_batches; ++j)
    sum += losses_all_[(j % world_) * micro_batches + j / world_];
  return sum;
}

}  // namespace stronghold::core
