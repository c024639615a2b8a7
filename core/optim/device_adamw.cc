#include "core/optim/device_adamw.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "glog/logging.h"

namespace stronghold::core {
namespace {

// Elements per chunk of the LibTorch path: its temporaries (the scaled
// gradient and Adam's denominator, 16 MiB each) stay small next to the
// layer working memory the planner reserves, for a few hundred launches on
// a GPT-2 vocabulary's embedding.
constexpr int64_t kChunk = int64_t{1} << 22;

torch::ScalarType ScalarTypeOf(DType d) {
  switch (d) {
    case DType::kBFloat16:
      return torch::kBFloat16;
    case DType::kFloat16:
      return torch::kFloat16;
    default:
      return torch::kFloat32;
  }
}

// FusedAdamW's passes, the host path's own: bit-identical to it.
class PoolAdamW : public DeviceAdamW {
 public:
  explicit PoolAdamW(FusedAdamW* pool) : pool_(pool) {
    CHECK(pool_ != nullptr);
  }

  void Accumulate(const DeviceAdamWState& s, const void* g, DType dtype,
                  bool first) override {
    absl::StatusOr<StepFuture> f = pool_->SubmitAccumulate(
        Buffer(s), g, dtype, first, /*measure=*/false, 1.0f);
    CHECK(f.ok()) << f.status();  // only a closed pool fails
    f->Wait();
  }
  StepStats Measure(const DeviceAdamWState& s, float grad_scale) override {
    absl::StatusOr<StepFuture> f = pool_->SubmitMeasure(Buffer(s), grad_scale);
    CHECK(f.ok()) << f.status();
    return f->Wait();
  }
  void Step(const DeviceAdamWState& s, const AdamWStep& hyper) override {
    pool_->StepAndMeasure(Buffer(s), hyper);
  }

 private:
  static ParamBuffer Buffer(const DeviceAdamWState& s) {
    ParamBuffer p;
    p.param = s.master;
    p.exp_avg = s.exp_avg;
    p.exp_avg_sq = s.exp_avg_sq;
    p.grad = s.accumulator;
    p.count = s.count;
    p.decay_count = s.decay_count;
    if (s.working != nullptr) {
      p.working = s.working;
      p.working_dtype = s.working_dtype;
    }
    return p;
  }
  FusedAdamW* const pool_;
};

// LibTorch ops, ReferenceAdamW's arithmetic (torch.optim.AdamW's order).
class TorchAdamW : public DeviceAdamW {
 public:
  explicit TorchAdamW(const c10::Device& device) : device_(device) {}

  void Accumulate(const DeviceAdamWState& s, const void* g, DType dtype,
                  bool first) override {
    torch::Tensor acc = Of(s.accumulator, s.count, DType::kFloat32);
    const torch::Tensor grad = Of(g, s.count, dtype);
    if (first) {
      acc.copy_(grad);
    } else {
      acc.add_(grad.to(torch::kFloat32));
    }
  }

  StepStats Measure(const DeviceAdamWState& s, float grad_scale) override {
    const torch::Tensor acc = Of(s.accumulator, s.count, DType::kFloat32);
    StepStats stats;
    torch::Tensor sum = torch::zeros(
        {}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
    for (int64_t at = 0; at < s.count; at += kChunk) {
      const int64_t n = std::min(kChunk, s.count - at);
      sum += acc.narrow(0, at, n)
                 .mul(grad_scale)
                 .to(torch::kFloat64)
                 .square()
                 .sum();
    }
    stats.grad_sq_sum = sum.item<double>();
    if (!std::isfinite(stats.grad_sq_sum)) {
      const torch::Tensor bad =
          torch::logical_not(torch::isfinite(acc.mul(grad_scale)));
      stats.nonfinite_count = bad.sum().item<int64_t>();
      if (stats.nonfinite_count > 0)
        stats.first_nonfinite = bad.nonzero()[0][0].item<int64_t>();
    }
    return stats;
  }

  void Step(const DeviceAdamWState& s, const AdamWStep& h) override {
    const double bc1 = 1.0 - std::pow(static_cast<double>(h.beta1), h.step);
    const double bc2 = 1.0 - std::pow(static_cast<double>(h.beta2), h.step);
    const float step_size = static_cast<float>(h.lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    const float decay = 1.0f - h.lr * h.weight_decay;
    torch::Tensor master = Of(s.master, s.count, DType::kFloat32);
    torch::Tensor m_all = Of(s.exp_avg, s.count, DType::kFloat32);
    torch::Tensor v_all = Of(s.exp_avg_sq, s.count, DType::kFloat32);
    const torch::Tensor acc = Of(s.accumulator, s.count, DType::kFloat32);
    torch::Tensor working = s.working != nullptr
                                ? Of(s.working, s.count, s.working_dtype)
                                : torch::Tensor();
    for (int64_t at = 0; at < s.count; at += kChunk) {
      const int64_t n = std::min(kChunk, s.count - at);
      torch::Tensor p = master.narrow(0, at, n);
      torch::Tensor m = m_all.narrow(0, at, n);
      torch::Tensor v = v_all.narrow(0, at, n);
      const torch::Tensor g = acc.narrow(0, at, n).mul(h.grad_scale);
      const int64_t decayed = std::clamp<int64_t>(s.decay_count - at, 0, n);
      if (decayed > 0) p.narrow(0, 0, decayed).mul_(decay);
      m.lerp_(g, 1.0f - h.beta1);
      v.mul_(h.beta2).addcmul_(g, g, 1.0f - h.beta2);
      p.addcdiv_(m, v.sqrt().div_(bc2_sqrt).add_(h.eps), -step_size);
      if (working.defined()) working.narrow(0, at, n).copy_(p);
    }
  }

 private:
  torch::Tensor Of(const void* p, int64_t n, DType d) const {
    return torch::from_blob(
        const_cast<void*>(p), {n},
        torch::TensorOptions().dtype(ScalarTypeOf(d)).device(device_));
  }
  const c10::Device device_;
};

}  // namespace

std::unique_ptr<DeviceAdamW> DeviceAdamW::ForDevice(Device* device,
                                                    FusedAdamW* pool) {
  if (device->torch_device().is_cpu()) return std::make_unique<PoolAdamW>(pool);
  return Torch(device->torch_device());
}

std::unique_ptr<DeviceAdamW> DeviceAdamW::Torch(
    const c10::Device& torch_device) {
  return std::make_unique<TorchAdamW>(torch_device);
}

}  // namespace stronghold::core
