// The portable file backend: a pool of threads doing blocking pread/pwrite
// on the striped files. It is what runs where io_uring cannot be set up
// (old kernels, seccomp profiles that forbid io_uring_setup); each thread
// keeps one request in flight, so the pool's size is its queue depth.
#ifndef STRONGHOLD_STORAGE_PREAD_BLOCK_DEVICE_H_
#define STRONGHOLD_STORAGE_PREAD_BLOCK_DEVICE_H_

#include <memory>

#include "storage/block_device.h"
#include "storage/striped_files.h"

namespace stronghold::storage {

// Takes ownership of `files`; runs `threads` (>= 1) I/O threads.
std::unique_ptr<BlockDevice> NewPreadBlockDevice(
    std::unique_ptr<StripedFiles> files, int threads);

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_PREAD_BLOCK_DEVICE_H_
