// The NVMe tier's bandwidth (core/profile/measure_nvme.h).
#include "core/profile/measure_nvme.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/util/status_macros.h"
#include "storage/aligned_buffer.h"
#include "storage/block_device_factory.h"

namespace stronghold::core {
namespace {

constexpr int64_t kMaxBytes = int64_t{64} << 30;

double Seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// GB/s of one pass over the device's first `blocks` blocks in order, all
// requests in one batch (the device keeps queue_depth in flight), the
// buffers reused round-robin as the engine's staging slots are.
absl::StatusOr<double> Pass(storage::BlockDevice& device, storage::IoOp op,
                            int64_t blocks, int64_t block, int depth,
                            char* buffers) {
  std::vector<storage::IoRequest> requests;
  requests.reserve(blocks);
  for (int64_t i = 0; i < blocks; ++i) {
    requests.push_back({op, i * block, block, buffers + (i % depth) * block});
  }
  const double start = Seconds();
  ASSIGN_OR_RETURN(storage::IoTicket ticket, device.Submit(requests));
  RETURN_IF_ERROR(device.Wait(ticket));
  if (op == storage::IoOp::kWrite) RETURN_IF_ERROR(device.Sync());
  const double elapsed = std::max(Seconds() - start, 1e-9);
  return static_cast<double>(blocks * block) / elapsed / 1e9;
}

absl::StatusOr<NvmeFigures> Measure(const NvmeMeasureOptions& o) {
  if (o.dirs.empty()) return absl::InvalidArgumentError("no directory");
  if (o.block_bytes < 4096 || o.block_bytes % 4096 != 0 ||
      o.block_bytes > (int64_t{64} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_bytes ", o.block_bytes,
                     " is not a multiple of 4096 in [4096, 64 MiB]"));
  }
  if (o.queue_depth < 1 || o.queue_depth > 1024 || o.repeats < 1 ||
      o.repeats > 100) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queue_depth ", o.queue_depth, " must be in [1, 1024] and repeats ",
        o.repeats, " in [1, 100]"));
  }
  const int64_t min_bytes = o.block_bytes * static_cast<int64_t>(o.dirs.size());
  if (o.bytes < min_bytes || o.bytes > kMaxBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("bytes ", o.bytes, " must be in [", min_bytes, ", ",
                     kMaxBytes, "] (a block per directory, at most 64 GiB)"));
  }
  const int64_t blocks = o.bytes / o.block_bytes;
  storage::FileBlockDeviceOptions device_options(o.dirs,
                                                 blocks * o.block_bytes);
  device_options.block_bytes = o.block_bytes;
  device_options.queue_depth = o.queue_depth;
  device_options.file_name = "nvme-profile";
  ASSIGN_OR_RETURN(std::unique_ptr<storage::BlockDevice> device,
                   storage::OpenFileBlockDevice(device_options));
  const int depth = static_cast<int>(std::min<int64_t>(o.queue_depth, blocks));
  storage::AlignedBuffer buffers(depth * o.block_bytes, device->alignment());
  if (buffers.data() == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", depth * o.block_bytes, " bytes of buffers"));
  }
  // Not zeros: a drive or file system that compresses or dedups zeros
  // would report a bandwidth no training state gets.
  for (int64_t i = 0; i < buffers.size(); ++i)
    buffers.data()[i] = static_cast<char>((i * 2654435761u) >> 13);
  // Registration only saves pinning per request; I/O works without it.
  (void)device->RegisterBuffers({{buffers.data(), buffers.size()}});

  NvmeFigures f;
  for (int r = 0; r < o.repeats; ++r) {
    ASSIGN_OR_RETURN(double write, Pass(*device, storage::IoOp::kWrite, blocks,
                                        o.block_bytes, depth, buffers.data()));
    ASSIGN_OR_RETURN(double read, Pass(*device, storage::IoOp::kRead, blocks,
                                       o.block_bytes, depth, buffers.data()));
    f.write_gbps = std::max(f.write_gbps, write);
    f.read_gbps = std::max(f.read_gbps, read);
  }
  const std::string describe = device->Describe();
  f.source = absl::StrFormat(
      "measured: %s, %d file(s), %d KiB blocks, queue depth %d, %s, %d MiB, "
      "best of %d, in %s",
      device->backend(), o.dirs.size(), o.block_bytes >> 10, o.queue_depth,
      describe.find("O_DIRECT") != std::string::npos ? "O_DIRECT"
                                                     : "buffered (page cache)",
      (blocks * o.block_bytes) >> 20, o.repeats, absl::StrJoin(o.dirs, ", "));
  return f;
}

}  // namespace

absl::StatusOr<NvmeFigures> MeasureNvme(const NvmeMeasureOptions& options) {
  absl::StatusOr<NvmeFigures> f = Measure(options);
  if (f.ok()) return f;
  return absl::Status(f.status().code(),
                      absl::StrCat("measuring the NVMe tier in ",
                                   absl::StrJoin(options.dirs, ", "), ": ",
                                   f.status().message()));
}

}  // namespace stronghold::core
