#include "core/tools/all_on_gpu_baseline.h"

#include <ATen/autocast_mode.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "core/model/gpt.h"
#include "core/model/gpt_layout.h"
#include "core/tools/bench_run.h"

namespace stronghold::core {

void CapTorchCudaAllocator(int64_t bytes) {
  // LibTorch's CUDA allocator exists only after a first CUDA tensor;
  // setMemoryFraction asserts that it does.
  torch::empty({1}, torch::TensorOptions().device(torch::kCUDA, 0));
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  const double fraction =
      bytes > 0 ? std::min(1.0, static_cast<double>(bytes) /
                                    static_cast<double>(total_bytes))
                : 1.0;
  c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, 0);
}

absl::StatusOr<StepMetrics> TrainAllOnGpu(const JobConfig& c, int warmup) {
  std::vector<StepMetrics> steps;
  int64_t peak_bytes = 0;
  const bool bf16 = c.training.precision == Precision::kBf16;
  if (bf16) at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  try {
    const auto opts =
        torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA, 0);
    const std::vector<BufferLayout> layout = ModelLayout(c.model);
    std::vector<torch::Tensor> params;
    for (const BufferLayout& l : layout) {
      params.push_back(torch::empty({l.count}, opts)
                           .normal_(0.0, 0.02)
                           .set_requires_grad(true));
    }
    torch::optim::AdamW adam(params,
                             torch::optim::AdamWOptions(c.training.lr)
                                 .betas({c.training.beta1, c.training.beta2})
                                 .eps(c.training.eps)
                                 .weight_decay(c.training.weight_decay));
    c10::cuda::CUDACachingAllocator::resetPeakStats(0);
    const int64_t b = c.training.batch, s = c.model.seq_len;
    const auto tok =
        torch::TensorOptions().dtype(torch::kInt64).device(torch::kCUDA, 0);
    for (int step = 0; step < c.training.steps; ++step) {
      torch::Tensor data = torch::randint(0, c.model.vocab, {b, s + 1}, tok);
      torch::cuda::synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      adam.zero_grad();
      // bf16: PyTorch's automatic mixed precision, as a user of plain
      // PyTorch runs it: fp32 weights and AdamW, the forward's matmuls in
      // bf16 under autocast, the backward outside it.
      at::autocast::set_autocast_enabled(at::kCUDA, bf16);
      torch::Tensor x =
          gpt::Embed(params.front(), layout.front(), data.narrow(1, 0, s));
      for (size_t i = 1; i + 1 < layout.size(); ++i) {
        x = gpt::Block(params[i], layout[i], x, c.model.heads);
      }
      torch::Tensor loss =
          gpt::HeadLoss(params.back(), layout.back(), params.front(),
                        layout.front(), x, data.narrow(1, 1, s));
      at::autocast::set_autocast_enabled(at::kCUDA, false);
      at::autocast::clear_cache();
      loss.backward();
      if (c.training.clip_norm > 0)
        torch::nn::utils::clip_grad_norm_(params, c.training.clip_norm);
      adam.step();
      torch::cuda::synchronize();
      steps.push_back({.step = step + 1,
                       .steps = c.training.steps,
                       .step_s = std::chrono::duration<double>(
                                     std::chrono::steady_clock::now() - t0)
                                     .count()});
    }
    using c10::CachingAllocator::StatType;
    peak_bytes = c10::cuda::CUDACachingAllocator::getDeviceStats(0)
                     .allocated_bytes[static_cast<size_t>(StatType::AGGREGATE)]
                     .peak;
  } catch (const c10::Error& e) {
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    c10::cuda::CUDACachingAllocator::emptyCache();
    const std::string what = e.what_without_backtrace();
    return absl::ResourceExhaustedError(what.substr(0, what.find('\n')));
  } catch (const std::exception& e) {
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    c10::cuda::CUDACachingAllocator::emptyCache();
    return absl::InternalError(e.what());
  }
  c10::cuda::CUDACachingAllocator::emptyCache();
  StepMetrics mean = MeanAfterWarmup(c, steps, warmup);
  mean.window = c.model.layers;
  mean.device_peak_bytes = peak_bytes;
  return mean;
}

}  // namespace stronghold::core
