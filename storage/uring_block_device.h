// The fast file backend: io_uring (liburing) with O_DIRECT, the files
// registered with the ring, and fixed (pre-registered) buffers for requests
// that lie in regions passed to RegisterBuffers().
//
// Submitters push pieces (at most one block each) into a software queue and
// onto the ring while fewer than queue_depth are in flight; one reaper thread
// takes completions off the ring, checks each result (negative or short is
// an error), refills the ring from the queue and finishes the pieces' batches.
// So a batch far larger than the queue depth is accepted at once and the
// device is kept at its queue depth without the caller's help.
#ifndef STRONGHOLD_STORAGE_URING_BLOCK_DEVICE_H_
#define STRONGHOLD_STORAGE_URING_BLOCK_DEVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "storage/block_device.h"
#include "storage/striped_files.h"

namespace stronghold::storage {

// Whether io_uring can be used in this process: a ring can be set up, and the
// kernel has the read/write, fixed-buffer and nop operations. Cached; the
// first call does the work.
absl::Status ProbeIoUring();

// Fails (the caller may fall back to pread) when the ring cannot be set up.
absl::StatusOr<std::unique_ptr<BlockDevice>> OpenUringBlockDevice(
    std::unique_ptr<StripedFiles> files, int queue_depth);

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_URING_BLOCK_DEVICE_H_
