// A block device in heap memory, for tests: same contract and validation as
// the file backends, no files. Requests complete during Submit().
#ifndef STRONGHOLD_STORAGE_MEMORY_BLOCK_DEVICE_H_
#define STRONGHOLD_STORAGE_MEMORY_BLOCK_DEVICE_H_

#include <cstdint>
#include <memory>

#include "storage/block_device.h"

namespace stronghold::storage {

struct MemoryBlockDeviceOptions {
  explicit MemoryBlockDeviceOptions(int64_t capacity_bytes)
      : capacity_bytes(capacity_bytes) {}

  // Usable bytes; rounded up to a multiple of alignment_bytes. Pages are only
  // touched when written, so a large, mostly unused device costs little.
  int64_t capacity_bytes;
  // Alignment the device demands, like O_DIRECT's logical block size.
  int64_t alignment_bytes = 4096;
};

std::unique_ptr<BlockDevice> NewMemoryBlockDevice(
    const MemoryBlockDeviceOptions& options);

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_MEMORY_BLOCK_DEVICE_H_
