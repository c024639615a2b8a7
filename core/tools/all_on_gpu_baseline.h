// The GPU benchmark's baseline: RESIDENT as Megatron-LM runs it (the
// planner's RESIDENT plan): the whole training state on the GPU, one autograd
// graph per step (no recomputation), LibTorch's AdamW on the GPU, global-norm
// clipping; in bf16, PyTorch's automatic mixed precision (fp32 weights and
// AdamW, the forward under bf16 autocast). What the engine's methods are
// measured against
// (docs/benchmarks.md, "GPU check"). Needs a GPU; LibTorch stays out of this
// header.
#ifndef STRONGHOLD_CORE_TOOLS_ALL_ON_GPU_BASELINE_H_
#define STRONGHOLD_CORE_TOOLS_ALL_ON_GPU_BASELINE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/plan/job_config.h"
#include "core/train/trainer.h"

namespace stronghold::core {

// Caps LibTorch's CUDA caching allocator on GPU 0 at `bytes` (an emulated
// card; more than the card, or 0, = the whole card). The engine's CUDA
// device has its own budget; this caps the baseline only.
void CapTorchCudaAllocator(int64_t bytes);

// Trains `config` (config.training.steps steps) all on GPU 0 and returns
// the mean step after the first `warmup` (bench_run.h's MeanAfterWarmup):
// window = the model's layers, device_peak_bytes = LibTorch's allocated
// high-water mark, no optimizer, copy or loss figures. Weights are drawn
// N(0, 0.02) on the GPU (the speed is what counts; the engine's runs use
// core/model's init). RESOURCE_EXHAUSTED when it does not fit under the
// allocator's cap; the cache is emptied either way.
absl::StatusOr<StepMetrics> TrainAllOnGpu(const JobConfig& config, int warmup);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_TOOLS_ALL_ON_GPU_BASELINE_H_
