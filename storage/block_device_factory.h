// Opening the NVMe tier's block device on files in --ssd_dir directories,
// with the best backend this machine allows: io_uring when a ring can be set
// up, otherwise the pread thread pool, with one warning per process. The
// backend in use is readable through ActiveFileBackend() for metrics.
#ifndef STRONGHOLD_STORAGE_BLOCK_DEVICE_FACTORY_H_
#define STRONGHOLD_STORAGE_BLOCK_DEVICE_FACTORY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/block_device.h"

namespace stronghold::storage {

enum class FileBackend {
  kAuto,     // io_uring if ProbeIoUring() succeeds, else pread (one warning)
  kIoUring,  // io_uring or an error
  kPread,    // the thread pool
};

struct FileBlockDeviceOptions {
  FileBlockDeviceOptions(std::vector<std::string> dirs, int64_t capacity_bytes)
      : dirs(std::move(dirs)), capacity_bytes(capacity_bytes) {}

  // One file per entry, striped in block_bytes units (entries may repeat;
  // put each on its own drive to add bandwidth).
  std::vector<std::string> dirs;
  // Bytes the device must hold; rounded up to whole blocks on every file.
  // Preallocated at open: a disk without room fails here, not mid-training.
  int64_t capacity_bytes;
  // Largest single I/O and the stripe unit. 1 MiB keeps NVMe drives at full
  // bandwidth at moderate queue depths; smaller blocks cost IOPS.
  int64_t block_bytes = 1 << 20;
  // io_uring: requests in flight on the ring. pread: I/O threads.
  int queue_depth = 32;
  // Bypass the page cache (O_DIRECT), so spilled state does not evict the
  // host memory it was spilled to save. Falls back to buffered I/O with a
  // warning on file systems without O_DIRECT.
  bool direct_io = true;
  FileBackend backend = FileBackend::kAuto;
  // The entries' directories, opened by the caller (the daemon opens them
  // inside its ssd roots, server/path_confinement.h); `dirs` then only names
  // them in paths and messages. Not taken; used while opening only. Empty =
  // open `dirs` by path (tests, tools).
  std::vector<int> dir_fds;
  // Each entry gets a private directory, stronghold-job-<job_id>-<random>,
  // removed with the device (storage/tier_dir.h; the daemon passes the job's
  // id, so that the directory names its job).
  int64_t job_id = 0;
  // Files are <dir>/<tier directory>/<file_name>.<index>, removed when the
  // device is destroyed (scratch space).
  std::string file_name = "tier";
};

absl::StatusOr<std::unique_ptr<BlockDevice>> OpenFileBlockDevice(
    const FileBlockDeviceOptions& options);

// The backend of the most recently opened file device: "io_uring", "pread",
// or "" before the first. Thread-safe; for the daemon's metrics.
absl::string_view ActiveFileBackend();

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_BLOCK_DEVICE_FACTORY_H_
