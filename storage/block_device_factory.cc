#include "storage/block_device_factory.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "storage/pread_block_device.h"
#include "storage/striped_files.h"
#include "storage/uring_block_device.h"

namespace stronghold::storage {
namespace {

std::atomic<const char*> active_backend{""};

void WarnFallbackOnce(const absl::Status& why) {
  static std::once_flag once;
  std::call_once(once, [&] {
    LOG(WARNING) << "io_uring is not usable (" << why.message()
                 << "); the NVMe tier uses the slower pread thread pool";
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlockDevice>> OpenFileBlockDevice(
    const FileBlockDeviceOptions& options) {
  if (options.queue_depth < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block device: queue depth ", options.queue_depth, " < 1"));
  }
  StripedFilesOptions files_options;
  files_options.dirs = options.dirs;
  files_options.dir_fds = options.dir_fds;
  files_options.job_id = options.job_id;
  files_options.file_name = options.file_name;
  files_options.capacity_bytes = options.capacity_bytes;
  files_options.block_bytes = options.block_bytes;
  files_options.direct_io = options.direct_io;

  absl::Status uring_status = absl::OkStatus();
  if (options.backend != FileBackend::kPread) {
    uring_status = ProbeIoUring();
    if (uring_status.ok()) {
      auto files = StripedFiles::Open(files_options);
      if (!files.ok()) return files.status();
      auto device =
          OpenUringBlockDevice(*std::move(files), options.queue_depth);
      if (device.ok()) {
        active_backend = "io_uring";
        return device;
      }
      uring_status = device.status();
    }
    if (options.backend == FileBackend::kIoUring) return uring_status;
    WarnFallbackOnce(uring_status);
  }
  auto files = StripedFiles::Open(files_options);
  if (!files.ok()) return files.status();
  active_backend = "pread";
  return NewPreadBlockDevice(*std::move(files),
                             std::min(options.queue_depth, 64));
}

absl::string_view ActiveFileBackend() { return active_backend.load(); }

}  // namespace stronghold::storage
