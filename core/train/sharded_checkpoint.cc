#include "core/train/sharded_checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <functional>

#include "absl/strings/str_cat.h"
#include "core/checkpoint/checkpoint_files.h"
#include "core/checkpoint/checkpoint_reader.h"
#include "core/util/status_macros.h"

namespace stronghold::core {
namespace {

int64_t Largest(const std::vector<CheckpointBuffer>& buffers) {
  int64_t n = 0;
  for (const CheckpointBuffer& b : buffers) n = std::max(n, b.layout.count);
  return n;
}

// The gathers of a checkpoint, in the order the writer asks for the
// buffers (core/checkpoint/checkpoint.cc: every master in buffer order in
// model.safetensors, then every buffer's moments in optimizer.safetensors).
// Every rank runs the same sequence; each rank's writer drives it through
// the hooks.
class Gathers {
 public:
  Gathers(Communicator* comm, const std::vector<BufferShard>& shards,
          const std::vector<CheckpointBuffer>& slices)
      : comm_(comm),
        shards_(shards),
        slices_(slices),
        full_(torch::empty({3, Largest(slices)}, torch::kFloat32)) {}

  int steps() const { return 2 * static_cast<int>(slices_.size()); }
  int done() const { return done_; }
  float* full(int array) { return full_[array].data_ptr<float>(); }

  // Step `done_`: buffer b's master, or its two moments.
  absl::Status Next() {
    const int n = static_cast<int>(slices_.size());
    const bool moments = done_ >= n;
    const CheckpointBuffer& b = slices_[done_ % n];
    const BufferShard& shard = shards_[done_ % n];
    ++done_;
    if (!moments) {
      if (b.load_param) RETURN_IF_ERROR(b.load_param());
      return Gather(shard, b.param, full(0));
    }
    if (b.load_moments) RETURN_IF_ERROR(b.load_moments());
    RETURN_IF_ERROR(Gather(shard, b.exp_avg, full(1)));
    return Gather(shard, b.exp_avg_sq, full(2));
  }

 private:
  // Every rank's slice into `out` (the whole buffer).
  absl::Status Gather(const BufferShard& shard, const float* slice,
                      float* out) {
    torch::Tensor piece = torch::zeros({shard.slice}, torch::kFloat32);
    if (shard.owned() > 0) {
      std::copy(slice, slice + shard.owned(), piece.data_ptr<float>());
    }
    torch::Tensor all = torch::empty({shard.padded}, torch::kFloat32);
    RETURN_IF_ERROR(comm_->AllGather(piece, all));
    std::copy(all.data_ptr<float>(), all.data_ptr<float>() + shard.count, out);
    return absl::OkStatus();
  }

  Communicator* const comm_;
  const std::vector<BufferShard>& shards_;
  const std::vector<CheckpointBuffer>& slices_;
  torch::Tensor full_;  // [3, largest]: a whole master, m and v
  int done_ = 0;
};

}  // namespace

absl::StatusOr<std::string> WriteShardedCheckpoint(
    Communicator* comm, const std::vector<BufferShard>& shards,
    const std::string& checkpoints_dir, const ModelConfig& model,
    const TrainingPosition& position,
    const std::vector<CheckpointBuffer>& slices, const std::string& job_json) {
  Gathers gathers(comm, shards, slices);
  // Every rank writes the whole checkpoint in its own job directory: the
  // all-gathers give every rank every buffer anyway, and a daemon can then
  // resume, requeue and serve (fetch) its rank's job from its own files,
  // with no path shared between nodes. The writers drive the same gathers
  // in the same order through the hooks.
  std::vector<CheckpointBuffer> whole;
  for (const CheckpointBuffer& s : slices) {
    CheckpointBuffer b;
    b.layout = s.layout;
    b.param = gathers.full(0);
    b.exp_avg = gathers.full(1);
    b.exp_avg_sq = gathers.full(2);
    b.load_param = [&gathers] { return gathers.Next(); };
    b.load_moments = [&gathers] { return gathers.Next(); };
    whole.push_back(std::move(b));
  }
  const absl::Status status =
      WriteCheckpoint(checkpoints_dir, model, position, whole, job_json)
          .status();
  // The rest of the sequence (what a failed write left), so every rank's
  // collectives stay in step.
  absl::Status gathered;
  while (gathers.done() < gathers.steps() && gathered.ok()) {
    gathered = gathers.Next();
  }
  if (!gathered.ok()) return gathered;  // the communicator is broken
  int64_t failed[1] = {status.ok() ? 0 : 1};
  RETURN_IF_ERROR(comm->AllReduceHost(absl::MakeSpan(failed), ReduceOp::kMax));
  if (!status.ok()) return status;
  if (failed[0] != 0) {
    return absl::InternalError(
        absl::StrCat("the checkpoint of step ", position.step,
                     " failed on another rank; see that rank's error"));
  }
  return CheckpointName(position.step);
}

absl::StatusOr<CheckpointManifest> LoadShardedCheckpoint(
    const std::string& checkpoint_dir, const ModelConfig& model,
    const std::vector<BufferShard>& shards,
    const std::vector<CheckpointBuffer>& slices) {
  torch::Tensor full = torch::empty({3, Largest(slices)}, torch::kFloat32);
  float* p = full[0].data_ptr<float>();
  float* m = full[1].data_ptr<float>();
  float* v = full[2].data_ptr<float>();
  std::vector<CheckpointBuffer> whole;
  for (size_t i = 0; i < slices.size(); ++i) {
    const CheckpointBuffer* s = &slices[i];
    const BufferShard* shard = &shards[i];
    CheckpointBuffer b;
    b.layout = s->layout;
    b.param = p;
    b.exp_avg = m;
    b.exp_avg_sq = v;
    // Each buffer, once read, keeps this rank's slice (written on to the
    // NVMe tier where the slice lives there).
    b.store_param = [s, shard, p]() -> absl::Status {
      std::copy(p + shard->begin, p + shard->end, s->param);
      return s->store_param ? s->store_param() : absl::OkStatus();
    };
    b.store_moments = [s, shard, m, v]() -> absl::Status {
      std::copy(m + shard->begin, m + shard->end, s->exp_avg);
      std::copy(v + shard->begin, v + shard->end, s->exp_avg_sq);
      return s->store_moments ? s->store_moments() : absl::OkStatus();
    };
    whole.push_back(std::move(b));
  }
  return LoadCheckpoint(checkpoint_dir, model, whole);
}

}  // namespace stronghold::core
