// CudaDevice: the offload schedule on an NVIDIA GPU. Three CUDA streams
// (compute, H2D, D2H) from LibTorch's pool, CUDA events between them (a ring
// per queue, created once), device buffers from cudaMalloc counted against a
// hard budget, pinned host memory from cudaHostAlloc. LibTorch compute issued
// inside ComputeScope() runs on the compute stream.
//
// No CUDA error ends the process: a failed cudaMalloc is the allocation's
// status (RESOURCE_EXHAUSTED for an out-of-memory, naming what was being
// allocated), and a failed call of the queues' work (a copy, an event, a
// wait) becomes the device's sticky status() (INTERNAL naming the call and
// CUDA's error), after which no copy or event is issued until Reset(). An
// error that
// loses the CUDA context (an illegal address, a kernel fault) cannot be
// recovered from in this process: every later Allocate() is
// FAILED_PRECONDITION, asking for a restart of the daemon.
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
absl::StatusOr<std::unique_ptr<Device>> CreateCudaDevice(int index,
                                                         int64_t budget_bytes);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DEVICE_CUDA_DEVICE_H_
