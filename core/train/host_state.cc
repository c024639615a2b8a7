#include "core/train/host_state.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/engine/engine.h"
#include "core/model/gpt_init.h"
#include "core/model/gpt_layout.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

CheckpointBuffer ToCheckpointBuffer(const HostBuffer& buffer) {
  CheckpointBuffer b;
  b.layout = buffer.layout;
  b.param = buffer.param;
  b.exp_avg = buffer.exp_avg;
  b.exp_avg_sq = buffer.exp_avg_sq;
  return b;
}

HostState::HostState(const JobConfig& config, SsdTier* tier,
                     std::vector<BufferShard> shards)
    : config_(config), tier_(tier), shards_(std::move(shards)) {}

// On a GPU what H2D copies every step is pinned (the blocks come from the
// device's cache, which keeps them for the next job, core/device/
// host_buffer_cache.h), which makes those copies asynchronous and full
// speed: the fp32 masters and gradients, or in bf16/fp16 the working copy
// (unless on the NVMe tier: the engine stages it in pinned memory).
absl::Status HostState::Allocate(bool reference, bool gpu, HostLedger* ledger,
                                 Device* device) {
  ledger_ = ledger;
  device_ = device;
  const bool fp32 = config_.training.precision == Precision::kFp32;
  // The reference's state is the (host) device's; the engine's the host's.
  const std::string prefix = reference ? "" : "host.";
  const std::vector<BufferLayout> layouts = ModelLayout(config_.model);
  // One accumulator for the spilled buffers whose gradient is consumed as
  // it lands (planned as host.grads.spilled.fp32), as large as the largest.
  int64_t shared_grad = 0;
  for (size_t b = 0; b < layouts.size(); ++b) {
    if (!tier_->GradTransient(static_cast<int>(b))) continue;
    HostBuffer h;
    h.layout = layouts[b];
    if (!shards_.empty()) h.shard = shards_[b];
    shared_grad = std::max(shared_grad, h.count());
  }
  if (shared_grad > 0) {
    ASSIGN_OR_RETURN(spilled_grad_,
                     Allocate(prefix + "grads.spilled.fp32", shared_grad,
                              torch::kFloat32, gpu && fp32, /*zero=*/true));
  }
  for (size_t b = 0; b < layouts.size(); ++b) {
    const int i = static_cast<int>(b);
    HostBuffer h;
    Storage s;
    h.layout = layouts[b];
    if (!shards_.empty()) h.shard = shards_[b];
    const int64_t n = h.count();  // a rank's slice, when sharded
    if (!tier_->MasterSpilled(i)) {
      ASSIGN_OR_RETURN(s.param,
                       Allocate(prefix + "weights.fp32", n, torch::kFloat32,
                                gpu && fp32, /*zero=*/false));
      h.param = s.param.data_ptr<float>();
    }
    if (tier_->GradTransient(i)) {
      h.grad = spilled_grad_.data_ptr<float>();
    } else {
      ASSIGN_OR_RETURN(s.grad,
                       Allocate(prefix + "grads.fp32", n, torch::kFloat32,
                                gpu && fp32, /*zero=*/true));
      h.grad = s.grad.data_ptr<float>();
    }
    if (!tier_->Spilled(i)) {
      ASSIGN_OR_RETURN(
          s.exp_avg, Allocate(prefix + "adam.exp_avg.fp32", n, torch::kFloat32,
                              false, /*zero=*/true));
      ASSIGN_OR_RETURN(s.exp_avg_sq,
                       Allocate(prefix + "adam.exp_avg_sq.fp32", n,
                                torch::kFloat32, false, /*zero=*/true));
      h.exp_avg = s.exp_avg.data_ptr<float>();
      h.exp_avg_sq = s.exp_avg_sq.data_ptr<float>();
    } else {
      h.spill_item = i - 1;
    }
    if (!fp32 && !tier_->WeightSpilled(i)) {
      // 16-bit raw storage: only our converters (core/optim/float16.h)
      // read and write it.
      ASSIGN_OR_RETURN(
          s.working,
          Allocate(absl::StrCat(prefix, "weights.",
                                PrecisionName(config_.training.precision)),
                   n, torch::kInt16, gpu, /*zero=*/false));
      h.working = s.working.data_ptr();
    }
    h.sent_array = tier_->SentArray(i);
    buffers_.push_back(h);
    storage_.push_back(std::move(s));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> HostState::Allocate(const std::string& name,
                                                  int64_t count,
                                                  torch::ScalarType dtype,
                                                  bool pinned, bool zero) {
  const auto options = torch::TensorOptions().dtype(dtype);
  RETURN_IF_ERROR(ledger_->Charge(
      name, count * static_cast<int64_t>(c10::elementSize(dtype))));
  if (!pinned)
    return zero ? torch::zeros({count}, options)
                : torch::empty({count}, options);
  ASSIGN_OR_RETURN(void* p,
                   device_->AllocateHost(count * c10::elementSize(dtype)));
  Device* device = device_;  // outlives the job's tensors (the daemon's)
  torch::Tensor t = torch::from_blob(
      p, {count}, [device](void* q) { device->FreeHost(q); }, options);
  if (zero) t.zero_();  // the cache hands out used blocks
  return t;
}

// Each buffer is its own counter-based stream (core/model/gpt_init.h), so
// buffers are drawn in parallel with the same result; serially, a log, a
// sine and a cosine per value add up for the seed's 1B-parameter models,
// which gpu_bench creates several times.
void HostState::InitWeights() {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  const size_t threads = std::min<size_t>(
      buffers_.size(), std::max(1u, std::thread::hardware_concurrency()));
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < buffers_.size(); i = next++) {
        const HostBuffer& b = buffers_[i];
        if (b.param == nullptr) continue;
        InitBufferRange(b.layout, config_.model, config_.training.seed,
                        static_cast<int>(i), b.begin(), b.begin() + b.count(),
                        b.param);
      }
    });
  }
  for (std::thread& t : pool) t.join();
}

// Spilled masters are read from the tier one buffer at a time, and working
// copies there are written through one buffer-sized array.
absl::Status HostState::RefreshWorkingCopies() {
  if (config_.training.precision == Precision::kFp32) return absl::OkStatus();
  std::vector<float> master;
  std::vector<int16_t> tier_working;
  for (int i = 0; i < static_cast<int>(buffers_.size()); ++i) {
    const HostBuffer& b = buffers_[i];
    const float* p = b.param;
    if (tier_->MasterSpilled(i)) {
      master.resize(b.count());
      RETURN_IF_ERROR(tier_->ReadMaster(i, master.data()));
      p = master.data();
    }
    if (!tier_->WeightSpilled(i)) {
      ToComputePrecision(p, b.count(), config_.training.precision, b.working);
      continue;
    }
    tier_working.resize(b.count());
    ToComputePrecision(p, b.count(), config_.training.precision,
                       tier_working.data());
    RETURN_IF_ERROR(tier_->WriteWorking(i, tier_working.data()));
  }
  return absl::OkStatus();
}

void HostState::TrackGradients() {
  for (Storage& s : storage_) {
    s.param.set_requires_grad(true);
    s.param.mutable_grad() = s.grad;  // backward accumulates in place
  }
}

void HostState::ZeroGradients() {
  for (Storage& s : storage_) {
    if (s.grad.defined()) s.grad.zero_();
  }
}

std::vector<CheckpointBuffer> HostState::CheckpointBuffers() {
  std::vector<CheckpointBuffer> out;
  for (int i = 0; i < static_cast<int>(buffers_.size()); ++i) {
    out.push_back(tier_->Spilled(i)
                      ? tier_->SpilledCheckpointBuffer(i, buffers_[i].param)
                      : ToCheckpointBuffer(buffers_[i]));
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<float>>> HostState::Masters() {
  std::vector<std::vector<float>> out;
  for (int i = 0; i < static_cast<int>(buffers_.size()); ++i) {
    const HostBuffer& b = buffers_[i];
    if (tier_->MasterSpilled(i)) {
      out.emplace_back(b.count());
      RETURN_IF_ERROR(tier_->ReadMaster(i, out.back().data()));
      continue;
    }
    out.emplace_back(b.param, b.param + b.count());
  }
  return out;
}

}  // namespace stronghold::core
