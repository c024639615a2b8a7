// Turning I/O results into absl::Status, identically for every backend, so
// that an error always names the operation, file, offset, length and errno.
#ifndef STRONGHOLD_STORAGE_IO_STATUS_H_
#define STRONGHOLD_STORAGE_IO_STATUS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "storage/block_device.h"

namespace stronghold::storage {

// Where a transfer went: the file (or "memory") and, for ENOSPC messages, the
// bytes that file must be able to hold.
struct IoTarget {
  absl::string_view file;
  int64_t needed_bytes = 0;
};

// The error for `err` (an errno value) from `op` of `bytes` at `offset` of
// the target. ENOSPC/EDQUOT/EFBIG -> RESOURCE_EXHAUSTED with the bytes
// needed; EIO -> DATA_LOSS; anything else -> INTERNAL.
absl::Status IoErrnoError(IoOp op, const IoTarget& target, int64_t offset,
                          int64_t bytes, int err);

// Checks one completion: `result` is the byte count transferred or -errno.
// Anything but exactly `bytes` is an error (a short transfer is DATA_LOSS).
absl::Status CheckTransfer(IoOp op, const IoTarget& target, int64_t offset,
                           int64_t bytes, int64_t result);

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_IO_STATUS_H_
