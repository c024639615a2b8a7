// A node's hardware as the schedule model (core/plan/schedule_model.h) needs
// it: copy bandwidths and latency between host and device, the CPU
// optimizer's and the NVMe tier's bandwidths, the device's achieved
// throughput for a transformer layer, its dense peak (for MFU) and its
// memory. Each figure carries the source it came from ("measured: ...",
// "datasheet: ...", "derived from ...").
//
// Profiles come from three places: named ones built into the daemon
// (deploy/hardware/*.json, NamedHardwareProfile), a measured one (the node's
// own), and a file a client sends (`strongholdctl plan --predict --hardware
// FILE`). The last is hostile input, so ParseHardwareProfile is strict: the
// document must be the format written by HardwareProfileToJson, every
// figure finite, positive and within its bounds (kFigureBounds), unknown
// keys refused; errors are INVALID_ARGUMENT naming the field.
//
// Plain C++ (no LibTorch): the model and its tests build in seconds.
#ifndef STRONGHOLD_CORE_PLAN_HARDWARE_PROFILE_H_
#define STRONGHOLD_CORE_PLAN_HARDWARE_PROFILE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

// The device's achieved throughput on a transformer layer of `hidden`
// (forward and backward alike), in TFLOPS. Between points the model
// interpolates linearly in log(hidden); outside them it takes the nearest.
struct ComputePoint {
  int hidden = 0;
  double tflops = 0;
};

struct DeviceCompute {
  Precision precision = Precision::kFp32;
  double peak_tflops = 0;  // dense peak, for MFU
  std::vector<ComputePoint> achieved;
  std::string source;
};

// One layer's measured forward and backward (backward alone, without the
// recompute) for a job's exact shape. Preferred over the curve when the
// shape matches.
struct LayerTiming {
  Precision precision = Precision::kFp32;
  int hidden = 0;
  int heads = 0;
  int seq_len = 0;
  int micro_batch = 0;
  double forward_s = 0;
  double backward_s = 0;
};

struct HardwareProfile {
  std::string name;         // [a-z0-9._-], 1..64 characters
  std::string description;  // free text, <= 1024 characters
  // The compute device is the host (the CPU device): compute, copies and
  // the optimizer share the same cores, so the model serialises them.
  bool device_is_host = false;

  // ---- Figures (units in the names; every one > 0 and bounded) ----
  double h2d_gbps = 0;        // pinned host -> device copy, GB/s (1e9 B/s)
  double d2h_gbps = 0;        // pinned device -> host copy
  double copy_latency_s = 0;  // fixed cost of one copy
  // Unpinned copies (the seed's L2L baseline copied through pageable
  // memory): GB/s, each direction.
  double pageable_copy_gbps = 0;
  // The CPU optimizer pool (FusedAdamW at its thread count): AdamW with
  // fp32 gradients, counted at 28 B per parameter; with a 16-bit working
  // copy (bf16/fp16), counted at 30 B per parameter.
  double cpu_adamw_gbps = 0;
  double cpu_adamw_lowp_gbps = 0;
  // Streaming passes of the pool other than AdamW (gradient accumulation,
  // measure, backups): GB/s of bytes moved.
  double cpu_copy_gbps = 0;
  // One thread's streaming bandwidth (run A's single-threaded gradient
  // accumulation; the seed's synchronous optimizer).
  double cpu_single_thread_gbps = 0;
  double cpu_threads = 0;  // the pool's size
  double nvme_read_gbps = 0;
  double nvme_write_gbps = 0;
  // AdamW on the device (the embedding's and resident layers' optimizer),
  // counted at 28 B per parameter.
  double device_adamw_gbps = 0;
  // Fixed cost of one layer pass on the device (kernel launches).
  double layer_overhead_s = 0;  // added to the curve's time
  double host_memory_bytes = 0;
  double device_memory_bytes = 0;

  std::vector<DeviceCompute> compute;
  std::vector<LayerTiming> layer_timings;
  // Where each figure came from, by its JSON name.
  std::map<std::string, std::string> sources;
};

// Bounds of a figure: a profile outside them is refused.
struct FigureBounds {
  const char* name;
  double HardwareProfile::*field;
  double min;
  double max;
};
const std::vector<FigureBounds>& HardwareFigures();

// Checks every field (finite, positive, within bounds, names well formed,
// the compute curve non-empty and sorted): INVALID_ARGUMENT naming it.
absl::Status ValidateHardwareProfile(const HardwareProfile& profile);

// Parses the JSON form (see deploy/hardware/h200.json) and validates it.
// The document is at most 1 MiB.
absl::StatusOr<HardwareProfile> ParseHardwareProfile(absl::string_view json);

// The JSON form, which ParseHardwareProfile reads back to an equal profile.
std::string HardwareProfileToJson(const HardwareProfile& profile);

// The compute entry for `precision` (fp16 falls back to bf16's, and bf16
// to fp16's: the same tensor cores); NOT_FOUND if the profile has none.
absl::StatusOr<const DeviceCompute*> ComputeFor(const HardwareProfile& profile,
                                                Precision precision);

// Achieved TFLOPS at `hidden` from the curve.
double AchievedTflops(const DeviceCompute& compute, int hidden);

// A layer's forward and backward (without recompute) for the job's shape:
// the matching LayerTiming, else FLOPs (algorithm.md §4, per layer and
// micro-batch) over the curve, plus layer_overhead_s each.
struct LayerCost {
  double forward_s = 0;
  double backward_s = 0;
  bool measured = false;  // from a LayerTiming
};
absl::StatusOr<LayerCost> LayerComputeCost(const HardwareProfile& profile,
                                           const JobConfig& config);

// Forward FLOPs of one block layer for one micro-batch:
// 24*b*s*h^2 + 4*b*s^2*h.
double LayerForwardFlops(const JobConfig& config);
// Forward FLOPs of the tied LM head for one micro-batch: 2*b*s*h*V.
double HeadForwardFlops(const JobConfig& config);

// The profiles in deploy/hardware/, built into the binary: names, and one
// by name (NOT_FOUND listing the names).
std::vector<std::string> NamedHardwareProfiles();
absl::StatusOr<HardwareProfile> NamedHardwareProfile(absl::string_view name);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_HARDWARE_PROFILE_H_
