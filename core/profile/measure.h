// Measures a node's hardware profile (core/plan/hardware_profile.h) the way
// the engine uses the hardware: copies through the Device interface (pinned
// staging and the copy streams on CUDA, the copy threads on the host
// device), FusedAdamW's AdamW and accumulate passes at the pool's thread
// count and on one thread, and one transformer block's forward and backward
// (gpt::Block, the engine's own) for a job's shape.
//
// What it cannot measure is filled from MeasureOptions and says so in the
// figure's source: the device's dense peak (a datasheet figure), the NVMe
// tier (core/tools:io_bench measures it; not at start-up) and, on the host
// device, the device AdamW (the same pool). Each measurement takes the best
// of a few repetitions after a warm-up.
#ifndef STRONGHOLD_CORE_PROFILE_MEASURE_H_
#define STRONGHOLD_CORE_PROFILE_MEASURE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/device/device.h"
#include "core/plan/hardware_profile.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

struct MeasureOptions {
  std::string name = "this-node";
  // Bytes per copy, and copies timed (the best counts).
  int64_t copy_bytes = int64_t{16} << 20;
  int copy_repeats = 3;
  // Parameters of the AdamW and accumulate passes (fp32), and the passes
  // timed. The pool's thread count: 0 = every usable CPU (FusedAdamW's).
  int64_t optimizer_params = int64_t{2} << 20;
  int optimizer_repeats = 3;
  int optimizer_threads = 0;
  // The compute curve's one point at start-up: a block of this hidden size
  // (seq 128, micro-batch 2) timed forward.
  int probe_hidden = 256;
  // Dense fp32 / bf16 peak of the device for MFU, TFLOPS (0: the host
  // device's estimate, threads x 32 fp32 FLOP/cycle x 2.5 GHz, or 2x that
  // in bf16).
  double peak_tflops_fp32 = 0;
  double peak_tflops_bf16 = 0;
  // Not measured at start-up.
  double nvme_read_gbps = 1;
  double nvme_write_gbps = 1;
  double host_memory_bytes = 0;  // 0: /proc/meminfo MemTotal
};

// The node's profile: copies, the optimizer pool, a probe of the compute
// curve. Allocates on `device` and Reset()s it: call it when no job runs.
// INTERNAL with context when a measurement fails (a device error).
absl::StatusOr<HardwareProfile> MeasureNodeProfile(
    Device& device, const MeasureOptions& options);

// One block layer's forward and backward (backward alone: the recompute is
// the forward again) for `config`'s shape and precision on `device`, the
// median of `repeats` after one warm-up, with the device drained around
// each pass.
absl::StatusOr<LayerTiming> MeasureLayer(Device& device,
                                         const JobConfig& config,
                                         int repeats = 3);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PROFILE_MEASURE_H_
