// CudaDevice: the offload schedule on an NVIDIA GPU. Three CUDA streams
// (compute, H2D, D2H) from LibTorch's pool, CUDA events between them (a ring
// per queue, created once), device buffers from cudaMalloc counted against a
// hard budget, pinned host memory from cudaHostAlloc. LibTorch compute issued
// inside ComputeScope() runs on the compute stream.
//
// Built only into the CUDA binaries (//core:cuda_device); CI compiles and
// links it, deploy/gpu/check.sh runs it.
#ifndef STRONGHOLD_CORE_DEVICE_CUDA_DEVICE_H_
#define STRONGHOLD_CORE_DEVICE_CUDA_DEVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/device/device.h"

namespace stronghold::core {

// CUDA device `index` with `budget_bytes` of device memory for the engine
// (0 = the free memory at creation). FAILED_PRECONDITION when there is no
// such GPU.
absl::StatusOr<std::unique_ptr<Device>> CreateCudaDevice(int index, int64_t budget_bytes);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DEVICE_CUDA_DEVICE_H_
