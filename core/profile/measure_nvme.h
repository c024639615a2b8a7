// Measures the NVMe tier's sequential write and read bandwidth the way the
// engine uses the tier (storage/block_device_factory.h): the same backend
// choice (io_uring, else pread), block size, queue depth and O_DIRECT, one
// file striped over the daemon's --ssd_root directories as a job that names
// one directory in each root would. The files live in a private tier
// directory (storage/tier_dir.h) removed afterwards, and a killed daemon's
// leftovers are removed at its next start like any job's.
//
// Writes go first (the reads then read what was written, never holes), each
// direction timed over the whole file, the best of `repeats` passes.
#ifndef STRONGHOLD_CORE_PROFILE_MEASURE_NVME_H_
#define STRONGHOLD_CORE_PROFILE_MEASURE_NVME_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace stronghold::core {

struct NvmeMeasureOptions {
  std::vector<std::string> dirs;  // required: the --ssd_root directories
  // Bytes per pass (rounded down to whole blocks; at least one block per
  // directory). 256 MiB: long enough for a drive's steady state at queue
  // depth 32, ~0.1 s per pass on a PCIe Gen4 drive.
  int64_t bytes = int64_t{256} << 20;
  int repeats = 2;
  // The engine's (core/train/ssd_tier.cc, the factory's defaults).
  int64_t block_bytes = int64_t{1} << 20;
  int queue_depth = 32;
};

struct NvmeFigures {
  double read_gbps = 0;  // GB = 1e9 bytes
  double write_gbps = 0;
  // "measured: io_uring, 2 files, 1 MiB blocks, queue depth 32, O_DIRECT,
  // 256 MiB, best of 2 in /a, /b": the figures' source in the profile.
  std::string source;
};

// INVALID_ARGUMENT without directories or with sizes out of range; the
// device's error (NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED for a
// full disk, ...) with the directory named when a pass fails.
absl::StatusOr<NvmeFigures> MeasureNvme(const NvmeMeasureOptions& options);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PROFILE_MEASURE_NVME_H_
