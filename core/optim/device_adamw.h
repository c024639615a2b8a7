// AdamW for a buffer whose optimizer state lives on the compute device: the
// embedding, with offload.device_embedding_optimizer, and block layers
// 0..K-1 with offload.device_resident_layers (docs/engine.md, "Optimizer
// state on the device").
//
// The embedding's gradient is the last to be complete in backward (the
// token lookup comes first in forward) and its weights are the first the
// next forward needs, so with the CPU optimizer its D2H copy, accumulation,
// update and H2D copy (about 28 bytes of host traffic and 8 of PCIe per
// parameter; 12% of a 0.86B-parameter GPT) sit between two steps. Kept on the
// device, the same work takes a few kernels.
//
// Two implementations, chosen by the device:
//   host device: FusedAdamW's own passes over the "device" memory (which is
//     host memory there), so a job is bit-identical to the CPU optimizer;
//   CUDA: LibTorch ops on the compute stream, the same arithmetic as
//     ReferenceAdamW (torch.optim.AdamW's order), in chunks so that the
//     temporaries stay small.
//
// Thread safety: called from the engine thread only; on CUDA inside the
// engine's compute scope (the ops go to the compute stream).
#ifndef STRONGHOLD_CORE_OPTIM_DEVICE_ADAMW_H_
#define STRONGHOLD_CORE_OPTIM_DEVICE_ADAMW_H_

#include <cstdint>
#include <memory>

#include "core/device/device.h"
#include "core/optim/fused_adamw.h"
#include "core/optim/optimizer.h"

namespace stronghold::core {

// One buffer's state on the device, `count` fp32 elements each unless said.
struct DeviceAdamWState {
  float* master = nullptr;       // fp32 master weights
  float* exp_avg = nullptr;      // m
  float* exp_avg_sq = nullptr;   // v
  float* accumulator = nullptr;  // the step's gradient, accumulated in fp32
  // What the model computes with, in `working_dtype` (bf16/fp16 jobs;
  // null in fp32, where the master is it).
  void* working = nullptr;
  DType working_dtype = DType::kFloat32;
  int64_t count = 0;
  int64_t decay_count = 0;  // elements [0, decay_count) are decayed
};

class DeviceAdamW {
 public:
  // For `device`: FusedAdamW passes (host device; `pool` required) or
  // LibTorch ops (CUDA).
  static std::unique_ptr<DeviceAdamW> ForDevice(Device* device,
                                                FusedAdamW* pool);
  // LibTorch ops on tensors of `torch_device` (the CUDA path; tests run it
  // on the CPU against ReferenceAdamW).
  static std::unique_ptr<DeviceAdamW> Torch(const c10::Device& torch_device);
  virtual ~DeviceAdamW() = default;

  // accumulator = (first ? 0 : accumulator) + g, g being `count` elements of
  // `dtype` on the device. Queued on the compute queue (CUDA) or done on
  // return (host device).
  virtual void Accumulate(const DeviceAdamWState& s, const void* g, DType dtype,
                          bool first) = 0;
  // What the accumulated gradient times `grad_scale` holds (its sum of
  // squares, non-finite elements), as FusedAdamW::SubmitMeasure gives it on
  // the host device; waits for the device (the global norm needs it).
  virtual StepStats Measure(const DeviceAdamWState& s, float grad_scale) = 0;
  // One AdamW step from the accumulator; writes the working copy too.
  // Queued on the compute queue (CUDA) or done on return (host device).
  virtual void Step(const DeviceAdamWState& s, const AdamWStep& hyper) = 0;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_OPTIM_DEVICE_ADAMW_H_
